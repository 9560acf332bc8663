"""One trial in plain PyTorch: data, models, share-then-unshare, FLOPs, training, reports."""

from budgetune.flops import (
    flops_per_step,
    flops_per_token,
    head_fraction,
    n_masked,
    n_params_nonemb_computed,
    plan_steps,
    tokens_per_step,
)
from budgetune.trainables._batches import Batch, BatchSampler, mask_tokens
from budgetune.trainables._byo import is_token_dir, load_token_dir
from budgetune.trainables._compress import (
    block_linears,
    compressed_bytes,
    compressed_copy,
    cubic_sparsity,
    embedding_bits,
    final_bytes,
    matrix_bytes,
    measured_sparsity,
    prune_to,
    token_matrix,
)
from budgetune.trainables._corpus import BUILTIN, Corpus, load_corpus
from budgetune.trainables._data import load_data, prepare_corpus
from budgetune.trainables._export import (
    DECODER,
    hf_model,
    load_point,
    point_model,
    save_compressed,
    save_point,
    save_tokenizer,
)
from budgetune.trainables._models import FAMILIES, Family, count_params
from budgetune.trainables._plan import cooldown_start, lr_at, report_steps
from budgetune.trainables._pycorpus import PYTHON, build_python_corpus, load_python
from budgetune.trainables._pyfiles import PythonFiles, SourceFile, discover, list_sources
from budgetune.trainables._report import GridCell, Report
from budgetune.trainables._sharing import (
    is_shared,
    share_blocks,
    transfer_optimizer_state,
    unshare_blocks,
)
from budgetune.trainables._tokenfile import open_tokens, write_tokens
from budgetune.trainables._tokenizer import TokenizedCorpus, cached_tokenizer, tokenize_corpus
from budgetune.trainables._trial import Trial, TrialConfig
from budgetune.trainables.load_compressed import load_compressed

__all__ = [
    "GridCell", "block_linears", "compressed_bytes", "compressed_copy", "cubic_sparsity",
    "final_bytes", "DECODER", "hf_model", "load_compressed", "load_point", "point_model",
    "save_compressed",
    "save_point", "save_tokenizer",
    "matrix_bytes", "measured_sparsity", "prune_to", "embedding_bits", "token_matrix",
    "BUILTIN", "FAMILIES", "Batch", "BatchSampler", "Corpus", "Family", "Report",
    "TokenizedCorpus", "Trial", "TrialConfig", "cooldown_start", "count_params", "flops_per_step",
    "flops_per_token", "head_fraction", "is_shared", "load_corpus", "load_data", "lr_at",
    "mask_tokens", "n_masked", "n_params_nonemb_computed", "plan_steps", "report_steps",
    "share_blocks", "tokens_per_step", "tokenize_corpus", "transfer_optimizer_state",
    "unshare_blocks", "cached_tokenizer",
    "PYTHON", "PythonFiles", "SourceFile", "build_python_corpus", "discover", "is_token_dir",
    "list_sources", "load_python", "load_token_dir", "open_tokens", "prepare_corpus",
    "write_tokens",
]
