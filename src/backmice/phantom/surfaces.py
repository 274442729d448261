"""Distances to the model's skin and fascia surfaces, for ground truth.

The surfaces are the phantom's own functions ``r = f(θ, z)`` (see
:mod:`backmice.phantom.anatomy`), not anything found in an image. A patch of a
surface is sampled every 0.5 mm, the nearest sample of each query point is
found with a k-d tree, and the nearest point is then refined by Gauss-Newton
steps on the surface's parameters ``(θ, z)``, so distances are accurate to
well under 0.01 mm. The sign of the fascia distance comes from the side:
positive where the point's radius exceeds the fascia's at the point's own
``(θ, z)`` (superficial, toward the skin), negative deep.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from backmice.phantom.anatomy import FASCIA_R, SKIN_R, PolarTables

__all__ = ["SurfacePatch"]


class SurfacePatch:
    """A sampled piece of the skin or fascia surface around a region of interest.

    Parameters
    ----------
    tables : PolarTables
        The model's radii.
    which : {"skin", "fascia"}
        The surface.
    centre : ndarray of shape (3,)
        Centre of the region of interest, LPS mm.
    half_size_mm : float
        Half size of the patch along the surface (both along θ and z), mm. It
        must exceed the region's half size plus the largest distance queried.
    step_mm : float
        Spacing of the coarse samples, mm.
    """

    def __init__(
        self,
        tables: PolarTables,
        which: str,
        centre: np.ndarray,
        half_size_mm: float,
        *,
        step_mm: float = 1.5,
    ) -> None:
        self.tables = tables
        self.column = {"skin": SKIN_R, "fascia": FASCIA_R}[which]
        centre = np.asarray(centre, dtype=np.float64)
        theta_c = math.atan2(centre[1], centre[0])
        r_c = float(self._radius(np.array([theta_c]), np.array([centre[2]]))[0])
        self.d_theta = step_mm / r_c
        self.d_z = step_mm
        n_t = math.ceil(half_size_mm / step_mm)
        theta = theta_c + self.d_theta * np.arange(-n_t, n_t + 1)
        z = centre[2] + self.d_z * np.arange(-n_t, n_t + 1)
        tt, zz = np.meshgrid(theta, z, indexing="ij")
        self._theta = tt.ravel()
        self._z = zz.ravel()
        self._tree = cKDTree(self._points(self._theta, self._z))

    def _radius(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.tables.interpolate(theta, z, [self.column])[:, 0]

    def _points(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        r = self._radius(theta, z)
        return np.column_stack([r * np.cos(theta), r * np.sin(theta), z])

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Unsigned distance from each point to the surface, mm, shape (N,)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        chunk = 8192
        return np.concatenate(
            [self._distance(points[i : i + chunk]) for i in range(0, len(points), chunk)]
        )

    def _distance(self, points: np.ndarray) -> np.ndarray:
        _, k = self._tree.query(points)
        theta, z = self._theta[k].copy(), self._z[k].copy()
        h_t, h_z = 1e-5, 1e-3
        for _ in range(4):  # Gauss-Newton on |p - S(θ, z)|² from the nearest sample
            s = self._points(theta, z)
            s_t = (self._points(theta + h_t, z) - s) / h_t
            s_z = (self._points(theta, z + h_z) - s) / h_z
            res = points - s
            a11 = (s_t * s_t).sum(1)
            a12 = (s_t * s_z).sum(1)
            a22 = (s_z * s_z).sum(1)
            b1 = (s_t * res).sum(1)
            b2 = (s_z * res).sum(1)
            det = a11 * a22 - a12 * a12
            d_theta = (a22 * b1 - a12 * b2) / det
            d_z = (a11 * b2 - a12 * b1) / det
            # Stay within one coarse sample of the start: the surface is only piecewise smooth.
            theta += np.clip(d_theta, -self.d_theta, self.d_theta)
            z += np.clip(d_z, -self.d_z, self.d_z)
        best = np.linalg.norm(points - self._points(theta, z), axis=1)
        # Never worse than the nearest coarse sample.
        coarse = np.linalg.norm(points - self._points(self._theta[k], self._z[k]), axis=1)
        return np.minimum(best, coarse)

    def side(self, points: np.ndarray) -> np.ndarray:
        """+1 where a point lies outside the surface (larger radius), −1 inside, shape (N,)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        theta = np.arctan2(points[:, 1], points[:, 0])
        r = np.hypot(points[:, 0], points[:, 1])
        return np.where(r > self._radius(theta, points[:, 2]), 1.0, -1.0)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance, positive outside the surface (superficial), negative inside, mm, (N,)."""
        return self.side(points) * self.distance(points)
