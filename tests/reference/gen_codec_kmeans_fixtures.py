"""Fixture of the codec's codebook k-means (model/codec_restart.c, tests/test_codec_restart.c):
EnCodec's kmeans() (encodec/quantization/core_vq.py, as vector-quantize-pytorch has it too),
written here from its semantics in float64 torch, with the initial means given as row indices
(the C side draws them from its own RNG; the test hands both sides the same ones).

For each case: X [n, d] frames, I [k] the rows the means start as, then after `iters` rounds
of (assign every row to the nearest mean by squared distance, move each mean with rows to
their average, keep a mean without rows) M [k, d] the means and B [k] the last round's bins.

Run: python3 tests/reference/gen_codec_kmeans_fixtures.py (writes tests/fixtures/codec/kmeans.txt)
"""
import os

import torch

from fixture_io import write_fixture


def kmeans(samples, means, num_iters):
    num_clusters = means.shape[0]
    bins = torch.zeros(num_clusters, dtype=torch.long)
    for _ in range(num_iters):
        diffs = samples[:, None, :] - means[None, :, :]
        dists = -(diffs ** 2).sum(dim=-1)
        buckets = dists.max(dim=-1).indices
        bins = torch.bincount(buckets, minlength=num_clusters)
        zero_mask = bins == 0
        bins_min_clamped = bins.masked_fill(zero_mask, 1)
        new_means = torch.zeros(num_clusters, samples.shape[1], dtype=samples.dtype)
        new_means.scatter_add_(0, buckets[:, None].expand(-1, samples.shape[1]), samples)
        new_means = new_means / bins_min_clamped[..., None]
        means = torch.where(zero_mask[..., None], means, new_means)
    return means, bins


def main():
    g = torch.Generator().manual_seed(13)
    out = {}
    # (n, d, k, iters): more frames than codes; clustered frames; fewer frames than codes
    # (the means drawn with repetition, as sample_vectors does then)
    cases = [(40, 6, 8, 10), (60, 4, 5, 3), (7, 5, 12, 4)]
    for c, (n, d, k, iters) in enumerate(cases):
        centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 2.0
        x = centres[torch.randint(0, k, (n,), generator=g)] + 0.4 * torch.randn(
            n, d, generator=g, dtype=torch.float64)
        x = x.float().double()  # the C side reads f32
        if n >= k:
            init = torch.randperm(n, generator=g)[:k]
        else:
            init = torch.randint(0, n, (k,), generator=g)
        means, bins = kmeans(x, x[init], iters)
        out[f"case{c}.X"] = x
        out[f"case{c}.I"] = init
        out[f"case{c}.iters"] = torch.tensor([iters])
        out[f"case{c}.M"] = means
        out[f"case{c}.B"] = bins
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fixtures", "codec", "kmeans.txt")
    write_fixture(path, out, "EnCodec's codebook k-means: tests/reference/gen_codec_kmeans_fixtures.py")
    print("wrote", path)


if __name__ == "__main__":
    main()
