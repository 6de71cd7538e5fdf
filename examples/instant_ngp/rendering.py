"""Render rays through the occupancy grid with nerfacc: sample the occupied steps, then
composite colour and opacity over them."""

from __future__ import annotations

import nerfacc
import torch


def render_rays(
    radiance_field,
    estimator,
    origins: torch.Tensor,
    viewdirs: torch.Tensor,
    color_bkgd: torch.Tensor,
    render_step_size: float,
    near_plane: float = 0.0,
    alpha_thre: float = 0.0,
    cone_angle: float = 0.0,
):
    """Colours, opacities and the number of samples rendered, for (n, 3) rays."""

    def sigma_fn(t_starts, t_ends, ray_indices):
        if t_starts.numel() == 0:
            return t_starts.new_zeros(0)
        positions = origins[ray_indices] + viewdirs[ray_indices] * ((t_starts + t_ends) / 2)[:, None]
        return radiance_field.query_density(positions).squeeze(-1)

    def rgb_sigma_fn(t_starts, t_ends, ray_indices):
        if t_starts.numel() == 0:
            return t_starts.new_zeros(0, 3), t_starts.new_zeros(0)
        directions = viewdirs[ray_indices]
        positions = origins[ray_indices] + directions * ((t_starts + t_ends) / 2)[:, None]
        rgb, density = radiance_field(positions, directions)
        return rgb, density.squeeze(-1)

    ray_indices, t_starts, t_ends = estimator.sampling(
        origins,
        viewdirs,
        sigma_fn=sigma_fn,
        near_plane=near_plane,
        render_step_size=render_step_size,
        stratified=radiance_field.training,
        cone_angle=cone_angle,
        alpha_thre=alpha_thre,
    )
    rgb, opacity, _, _ = nerfacc.rendering(
        t_starts, t_ends, ray_indices, n_rays=len(origins), rgb_sigma_fn=rgb_sigma_fn, render_bkgd=color_bkgd
    )
    return rgb, opacity, len(t_starts)


@torch.no_grad()
def render_image(radiance_field, estimator, data: dict, render_step_size: float, chunk: int = 8192, **options):
    """A whole (H, W, 3) image, rendered ``chunk`` rays at a time."""
    origins = data["origins"].reshape(-1, 3)
    viewdirs = data["viewdirs"].reshape(-1, 3)
    parts = []
    for start in range(0, len(origins), chunk):
        rgb, _, _ = render_rays(
            radiance_field,
            estimator,
            origins[start : start + chunk],
            viewdirs[start : start + chunk],
            data["color_bkgd"],
            render_step_size,
            **options,
        )
        parts.append(rgb)
    return torch.cat(parts).reshape(data["pixels"].shape)
