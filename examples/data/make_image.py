"""Writes image.npy, the sample input of examples/cnn.kiln: a 1x1x28x28
float32 picture of a T-shirt outline in [0, 1], drawn from a formula so
the file can be regenerated exactly.  Run with /usr/bin/python3."""
import numpy as np

y, x = np.mgrid[0:28, 0:28].astype(np.float32)
body = (np.abs(x - 13.5) < 7) & (y > 6) & (y < 25)
sleeves = (np.abs(x - 13.5) < 12) & (y > 6) & (y < 12)
neck = ((x - 13.5) ** 2 + (y - 5) ** 2) < 12
img = ((body | sleeves) & ~neck).astype(np.float32)
img *= 0.6 + 0.4 * np.cos(x / 5.0) * np.sin(y / 7.0) ** 2
np.save("image.npy", img.reshape(1, 1, 28, 28).astype(np.float32))
