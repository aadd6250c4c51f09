"""Writes the PyTorch files test_interop imports (run with Debian's /usr/bin/python3 and python3-torch).

usage: make_interop_fixtures.py CONFIG VOCAB_SIZE OUTDIR   (VOCAB_SIZE overrides model.vocab-size: small files)

The tiny standard model of CONFIG (python/pyramidclip_torch.py, seed 0, LayerNorms and biases moved off
their 1/0 init so that every tensor matters), saved as
  plain.pt      model.state_dict()
  wrapped.pt    {'state_dict': {'module.' + k: v}, 'epoch': 3} (a DDP training checkpoint)
  traced.pt     torch.jit.trace of the model (TorchScript archive)
  half.pt       the state dict in fp16 (as OpenAI's archives)
  legacy.pt     plain.pt in the pre-1.6 non-zip format
  pyobject.pt   {'state_dict': ..., 'args': argparse.Namespace(...)} (a Python object C++ cannot unpickle)
  missing.pt / unexpected.pt / wrong_shape.pt   state dicts with one key removed / added / reshaped
  garbage.pt    bytes that are no PyTorch file
  expected.pt   inputs and Python's embeddings: images, tokens, image_emb, text_emb (fp32 weights),
                image_emb_half, text_emb_half, logit_scale_half (the fp16-rounded weights), logit_scale
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import pyramidclip_torch as pt  # noqa: E402


def main():
    config, vocab_size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cfg = pt.load_config(config, {"model.vocab-size": vocab_size})
    model = pt.build_model(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_"):
                p.add_(0.1 * torch.randn_like(p))
    m = cfg["model"]
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, m["image_size"], m["image_size"], generator=g)
    eot = m["vocab_size"] - 1  # CLIP's EOT has the largest id; EOT pooling takes the argmax
    tokens = torch.zeros(3, m["context_length"], dtype=torch.long)
    for row, length in enumerate((5, 12, 30)):
        tokens[row, :length] = torch.randint(1, eot, (length,), generator=g)
        tokens[row, length] = eot

    sd = {k: v.clone() for k, v in model.state_dict().items()}  # not the live tensors: load_state_dict below
    torch.save(model.state_dict(), os.path.join(out, "plain.pt"))  # an OrderedDict with _metadata, as users save it
    with torch.no_grad():
        image_emb, text_emb, scale = model(images, tokens)
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, os.path.join(out, "wrapped.pt"))
    torch.jit.trace(model, (images, tokens)).save(os.path.join(out, "traced.pt"))
    torch.save(sd, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1e-3)}, os.path.join(out, "pyobject.pt"))

    half = {k: v.half() for k, v in sd.items()}
    torch.save(half, os.path.join(out, "half.pt"))
    model.load_state_dict({k: v.float() for k, v in half.items()})
    with torch.no_grad():
        image_half, text_half, scale_half = model(images, tokens)

    missing = dict(sd)
    del missing["visual.ln_post.bias"]
    torch.save(missing, os.path.join(out, "missing.pt"))
    torch.save(dict(sd, **{"visual.extra_head.weight": torch.zeros(4)}), os.path.join(out, "unexpected.pt"))
    torch.save(dict(sd, **{"text_projection": torch.zeros(m["text_width"], 2 * m["embed_dim"])}),
               os.path.join(out, "wrong_shape.pt"))
    with open(os.path.join(out, "garbage.pt"), "wb") as f:
        f.write(b"this is not a checkpoint\n" * 10)

    torch.save({"images": images, "tokens": tokens, "image_emb": image_emb, "text_emb": text_emb,
                "image_emb_half": image_half, "text_emb_half": text_half, "logit_scale": scale,
                "logit_scale_half": scale_half},
               os.path.join(out, "expected.pt"))
    print(f"wrote fixtures for {len(sd)} tensors to {out}")


if __name__ == "__main__":
    main()
