"""Writes the text fixtures read by tests/fixture.c: per tensor a header line
`NAME DTYPE NDIM D0 D1 ...` and a line of row-major values (f32 with 9 significant digits)."""
import numpy as np


def write_fixture(path, tensors, comment=""):
    """tensors: dict name -> array-like (float -> f32, int -> i32), written in order."""
    with open(path, "w") as f:
        if comment:
            for line in comment.splitlines():
                f.write(f"# {line}\n")
        for name, value in tensors.items():
            a = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
            is_int = np.issubdtype(a.dtype, np.integer)
            dtype = "i32" if is_int else "f32"
            f.write(f"{name} {dtype} {a.ndim} {' '.join(str(d) for d in a.shape)}\n")
            flat = a.reshape(-1)
            if is_int:
                f.write(" ".join(str(int(v)) for v in flat) + "\n")
            else:
                f.write(" ".join(f"{float(v):.9g}" for v in flat.astype(np.float32)) + "\n")
