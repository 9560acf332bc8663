"""Run as a script, in a process that never imports budgetune: load an export with plain
transformers (or its compressed artifact with its own load_compressed.py) and print the mean
cross-entropy on the validation windows saved in an .npz file, as JSON."""

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main(folder: str, windows: str, family: str, artifact: str) -> None:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    if artifact == "dense":
        auto = AutoModelForCausalLM if family == "gpt2" else AutoModelForMaskedLM
        model = auto.from_pretrained(folder)
    else:
        sys.path.insert(0, folder)
        from load_compressed import load_compressed

        model = load_compressed(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model.eval()
    data = np.load(windows)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(int(data["n"])):
            inputs = torch.from_numpy(data[f"inputs{i}"])
            targets = torch.from_numpy(data[f"targets{i}"])
            if family == "gpt2":
                logits = model(input_ids=inputs).logits
                loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                       reduction="sum")
            else:
                positions = torch.arange(inputs.shape[1]).expand_as(inputs)
                logits = model(input_ids=inputs, position_ids=positions).logits
                mask = torch.from_numpy(data[f"positions{i}"])
                loss = F.cross_entropy(logits[mask].float(), targets, reduction="sum")
            total, count = total + float(loss), count + targets.numel()
    print(json.dumps({"loss": total / count, "n_layers": model.config.num_hidden_layers,
                      "class": type(model).__name__,
                      "ids": tokenizer("def f(x):\n    return x")["input_ids"],
                      "budgetune_imported": any(m.startswith("budgetune")
                                                for m in sys.modules)}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
