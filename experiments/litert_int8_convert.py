"""Runs in the LiteRT converter's venv (``hand-nas mobile setup-litert``): PT2E static int8 of an exported program
with litert-torch's own quantizer (symmetric, per-channel weights), calibrated on given images, then converted;
prints the quantized graph's relative error per output in torch (before conversion) as one JSON line.

    <converter python> experiments/litert_int8_convert.py PROGRAM.pt2 CALIB.npy OUT.tflite
"""
import json
import sys

import numpy as np
import torch


def main(src: str, calib: str, dst: str) -> None:
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    images = np.load(calib)
    program = torch.export.load(src).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    m = quantize_pt2e.prepare_pt2e(torch.export.load(src).module(), quantizer)
    with torch.no_grad():
        for img in images:
            m(torch.as_tensor(img[None]))
    m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
    # the quantized graph in torch, before conversion: each output's relative error against the fp32 program
    with torch.no_grad():  # batch 1: the program was exported at it
        outs = [[torch.cat(t) for t in zip(*(f(torch.as_tensor(img[None])) for img in images[:4]))] for f in (program, m)]
    errors = [float((a - b).norm() / a.norm()) for a, b in zip(*outs)]
    print(json.dumps({"torch_int8_relative_error": errors}), flush=True)
    size = images.shape[-1]
    litert_torch.convert(m, (torch.rand(1, 3, size, size),), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(dst)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: litert_int8_convert.py PROGRAM.pt2 CALIB.npy OUT.tflite")
    main(*sys.argv[1:])
