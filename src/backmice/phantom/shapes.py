"""Analytic solids in LPS millimetres: ellipsoids and extruded ellipses.

Every solid offers a *field*: a function that is negative inside, zero on the
surface and positive outside, with a gradient no larger than 1, so that
``|field(p)|`` never exceeds the distance from ``p`` to the surface. The
renderer uses this to know which voxels lie wholly inside one tissue (no
supersampling needed) and which straddle a boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ellipsoid", "ExtrudedEllipse", "fibonacci_sphere"]


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spread unit vectors (Fibonacci lattice).

    Returns
    -------
    ndarray of shape (n, 3)
    """
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    rho = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.column_stack([rho * np.cos(phi), rho * np.sin(phi), z])


@dataclass(frozen=True)
class Ellipsoid:
    """A solid ellipsoid.

    Attributes
    ----------
    centre : ndarray of shape (3,)
        Centre, LPS mm.
    semi_axes : ndarray of shape (3,)
        Semi-axis lengths (a, b, c), mm, largest first.
    rotation : ndarray of shape (3, 3)
        Orthonormal; column ``j`` is the LPS direction of semi-axis ``j``.
    """

    centre: np.ndarray
    semi_axes: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", np.asarray(self.centre, dtype=np.float64))
        object.__setattr__(self, "semi_axes", np.asarray(self.semi_axes, dtype=np.float64))
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=np.float64))

    @property
    def volume_mm3(self) -> float:
        """Exact volume, 4/3·π·abc (mm³)."""
        a, b, c = self.semi_axes
        return 4.0 / 3.0 * math.pi * a * b * c

    @property
    def half_extent(self) -> np.ndarray:
        """Half size of the axis-aligned bounding box along x, y, z (mm), shape (3,)."""
        return np.sqrt(((self.rotation * self.semi_axes) ** 2).sum(axis=1))

    def local(self, points: np.ndarray) -> np.ndarray:
        """Points in the ellipsoid's own frame (mm, along its semi-axes), shape (N, 3)."""
        return (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation

    def normalized_radius(self, points: np.ndarray) -> np.ndarray:
        """``|(p - centre)|`` in units of the semi-axes: < 1 inside. Shape (N,)."""
        q = self.local(points) / self.semi_axes
        return np.sqrt((q * q).sum(axis=1))

    def field(self, points: np.ndarray) -> np.ndarray:
        """Lipschitz-1 inside/outside field (mm, negative inside), shape (N,)."""
        return (self.normalized_radius(points) - 1.0) * float(self.semi_axes.min())

    def grown(self, mm: float) -> Ellipsoid:
        """The ellipsoid with every semi-axis longer by ``mm`` (a shell's outer surface)."""
        return Ellipsoid(self.centre, self.semi_axes + mm, self.rotation)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask of the points inside, shape (N,)."""
        return self.normalized_radius(points) < 1.0

    def surface_points(self, n: int) -> np.ndarray:
        """``n`` points on the surface (LPS mm), shape (n, 3)."""
        return self.centre + (fibonacci_sphere(n) * self.semi_axes) @ self.rotation.T

    def interior_points(self, step_mm: float) -> np.ndarray:
        """Points of a regular grid (in the ellipsoid's frame) inside it, shape (N, 3)."""
        axes = [np.arange(-s, s + 1e-9, step_mm) for s in self.semi_axes]
        g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        g = g[((g / self.semi_axes) ** 2).sum(axis=1) < 1.0]
        return self.centre + g @ self.rotation.T

    def second_moment(self) -> np.ndarray:
        """Second moment about the centre, ∫ (p−c)(p−c)ᵀ dV (mm⁵), shape (3, 3)."""
        return self.volume_mm3 / 5.0 * (self.rotation * self.semi_axes**2) @ self.rotation.T

    def section(self, point: np.ndarray, normal: np.ndarray) -> tuple[float, float] | None:
        """Semi-axes of the ellipse cut by a plane, or None if the plane misses.

        Parameters
        ----------
        point : ndarray of shape (3,)
            A point of the plane (LPS mm).
        normal : ndarray of shape (3,)
            The plane's normal.

        Returns
        -------
        (float, float) or None
            Major and minor semi-axes of the section (mm).
        """
        normal = np.asarray(normal, dtype=np.float64)
        normal = normal / np.linalg.norm(normal)
        helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
        u = np.cross(normal, helper)
        u /= np.linalg.norm(u)
        v = np.cross(normal, u)
        cut = self.section_in_plane(point, u, v)
        return None if cut is None else (cut[1][0], cut[1][1])

    def section_in_plane(
        self, origin: np.ndarray, u: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, tuple[float, float], float] | None:
        """The ellipse cut by the plane ``origin + s·u + t·v`` (u, v orthonormal).

        Returns
        -------
        centre : ndarray of shape (2,)
            ``(s, t)`` of the section's centre, mm.
        semi_axes : (float, float)
            Major and minor semi-axes, mm.
        angle_deg : float
            Angle of the major axis from ``u`` toward ``v``, in (−90, 90].
        None
            When the plane misses the ellipsoid.
        """
        basis = np.column_stack([np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)])
        q = (self.rotation / self.semi_axes**2) @ self.rotation.T  # (p-c)^T Q (p-c) <= 1
        o = np.asarray(origin, dtype=np.float64) - self.centre
        a2 = basis.T @ q @ basis
        b1 = basis.T @ q @ o
        c0 = float(o @ q @ o)
        s0 = -np.linalg.solve(a2, b1)
        k = 1.0 - (c0 + float(b1 @ s0))
        if k <= 0:
            return None
        eig, vec = np.linalg.eigh(a2 / k)
        axes = 1.0 / np.sqrt(eig)  # eigh sorts ascending, so the major axis comes first
        major = vec[:, 0]
        angle = math.degrees(math.atan2(major[1], major[0]))
        if angle <= -90.0:
            angle += 180.0
        elif angle > 90.0:
            angle -= 180.0
        return s0, (float(axes[0]), float(axes[1])), angle


@dataclass(frozen=True)
class ExtrudedEllipse:
    """An ellipse in the axial plane swept along z (a bone, a canal, a bowel loop).

    The ellipse's centre may drift linearly with z, and the solid may be capped
    at ``z_min``/``z_max``.

    Attributes
    ----------
    centre : (float, float)
        Centre (x, y) at z = 0, LPS mm.
    semi_axes : (float, float)
        Semi-axes (mm) along the ellipse's own axes.
    angle_deg : float
        Rotation of the first semi-axis from +x toward +y.
    drift : (float, float)
        Change of the centre (x, y) per mm of z.
    z_min, z_max : float
        Caps (mm); ±inf for none.
    """

    centre: tuple[float, float]
    semi_axes: tuple[float, float]
    angle_deg: float = 0.0
    drift: tuple[float, float] = (0.0, 0.0)
    z_min: float = -math.inf
    z_max: float = math.inf

    def field(self, points: np.ndarray) -> np.ndarray:
        """Lipschitz-1 inside/outside field (mm, negative inside), shape (N,)."""
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        cx = self.centre[0] + self.drift[0] * z
        cy = self.centre[1] + self.drift[1] * z
        ang = math.radians(self.angle_deg)
        ca, sa = math.cos(ang), math.sin(ang)
        dx, dy = x - cx, y - cy
        u = (dx * ca + dy * sa) / self.semi_axes[0]
        v = (-dx * sa + dy * ca) / self.semi_axes[1]
        # The drift tilts the solid; dividing by sqrt(1 + |drift|^2) keeps the bound.
        scale = min(self.semi_axes) / math.sqrt(1.0 + self.drift[0] ** 2 + self.drift[1] ** 2)
        f = (np.sqrt(u * u + v * v) - 1.0) * scale
        if math.isfinite(self.z_min):
            f = np.maximum(f, self.z_min - z)
        if math.isfinite(self.z_max):
            f = np.maximum(f, z - self.z_max)
        return f

    def grown(self, mm: float) -> ExtrudedEllipse:
        """The same solid with both semi-axes longer by ``mm`` (shorter if negative)."""
        a, b = self.semi_axes
        return ExtrudedEllipse(
            self.centre, (a + mm, b + mm), self.angle_deg, self.drift, self.z_min, self.z_max
        )

    def bounds_xy(self, z0: float, z1: float) -> tuple[float, float, float, float]:
        """Bounding box ``(x0, x1, y0, y1)`` of the solid between heights z0 and z1 (mm)."""
        ang = math.radians(self.angle_deg)
        hx = math.hypot(self.semi_axes[0] * math.cos(ang), self.semi_axes[1] * math.sin(ang))
        hy = math.hypot(self.semi_axes[0] * math.sin(ang), self.semi_axes[1] * math.cos(ang))
        xs = [self.centre[0] + self.drift[0] * z for z in (z0, z1)]
        ys = [self.centre[1] + self.drift[1] * z for z in (z0, z1)]
        return min(xs) - hx, max(xs) + hx, min(ys) - hy, max(ys) + hy
