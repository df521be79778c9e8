// Package torchpickle reads PyTorch state dicts saved by torch.save: the zip
// format of PyTorch 1.6 and later (an archive holding data.pkl, a pickle of
// the dict, and one uncompressed record per tensor storage), as mamba_ssm's
// releases ship them in pytorch_model.bin.
//
// It is deliberately minimal. The pickle is interpreted by a small stack
// machine that knows only the opcodes torch.save emits for a dict of
// tensors, and only these globals: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the
// typed storage classes (torch.FloatStorage, ...). Any other global, opcode
// or value is refused with an error: nothing in a file can call code. Every
// size read from the file is checked against the file's own length before
// anything is allocated, so a corrupt file gives an error, never a panic or
// a huge allocation. The legacy (pre-1.6, tar or raw pickle) format and
// TorchScript archives are refused.
//
// Tensors come back as safetensors.Tensor values (dtype names of the
// safetensors format, row-major little-endian data), in the dict's order;
// views with any strides are gathered into contiguous data.
package torchpickle
