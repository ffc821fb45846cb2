"""The shared core of the ``weights`` plugin: state-dict algebra over modules, safetensors files and model folders.

- :mod:`~malot_weights.core.safetensors_io`: streaming safetensors reader/writer (one tensor at a time).
- :mod:`~malot_weights.core.checkpoint`: :class:`TensorSource` over modules, state dicts, files and HF folders;
  :class:`CheckpointWriter` for single-file or sharded output.
- :mod:`~malot_weights.core.algebra`: flatten/unflatten, task vectors, weighted averages, parameter blocks, sparse
  differences, and :func:`merge_tensorwise`, the streaming per-tensor merge.
- :mod:`~malot_weights.core.fisher`: diagonal Fisher with labels sampled from the model.
- :mod:`~malot_weights.core.lora`: LoRA merge, unmerge and extraction.

Importing this package does not import torch; the functions do.
"""

from malot_weights.core.algebra import (
    MergeReport,
    SparseDelta,
    add_scaled,
    apply_sparse_delta,
    apply_task_vector,
    flatten,
    is_mergeable,
    merge_tensorwise,
    parameter_blocks,
    sparse_delta,
    task_vector,
    unflatten,
    weighted_average,
)
from malot_weights.core.checkpoint import (
    CheckpointWriter,
    FolderSource,
    MemorySource,
    OptionalSource,
    SafetensorsSource,
    TensorSource,
    iter_tensors,
    load_state_dict,
    open_source,
    save_state_dict,
)
from malot_weights.core.fisher import diagonal_fisher
from malot_weights.core.lora import (
    LoraPair,
    extract_lora,
    load_lora,
    lora_state_dict,
    lora_targets,
    merge_lora,
    merge_lora_into,
    unmerge_lora,
)
from malot_weights.core.safetensors_io import SafetensorsReader, SafetensorsWriter, TensorInfo

__all__ = [
    "CheckpointWriter",
    "FolderSource",
    "LoraPair",
    "MemorySource",
    "MergeReport",
    "OptionalSource",
    "SafetensorsReader",
    "SafetensorsSource",
    "SafetensorsWriter",
    "SparseDelta",
    "TensorInfo",
    "TensorSource",
    "add_scaled",
    "apply_sparse_delta",
    "apply_task_vector",
    "diagonal_fisher",
    "extract_lora",
    "flatten",
    "is_mergeable",
    "iter_tensors",
    "load_lora",
    "load_state_dict",
    "lora_state_dict",
    "lora_targets",
    "merge_lora",
    "merge_lora_into",
    "merge_tensorwise",
    "open_source",
    "parameter_blocks",
    "save_state_dict",
    "sparse_delta",
    "task_vector",
    "unflatten",
    "unmerge_lora",
    "weighted_average",
]
