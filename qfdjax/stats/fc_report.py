"""`qfdjax.fc(dir, n)`: Feldman-Cousins regions of a finished scan, as `qfdjax report DIR --fc N` computes them."""

from __future__ import annotations


def fc(directory, n: int, *, seed: int = 0, chunk: int = 8, figure_format: str = "png", progress=None):
    """Feldman-Cousins regions of the finished scan in `directory` (n toys per grid point), resumable.

    The toys are kept in ``directory/fc`` as `report --fc` keeps them; the scan's analysis, figures
    (fc_map too) and scan.json are rewritten with the regions.

    Returns
    -------
    ScanResult
        The scan with its ``"fc"`` entry (``plot_fc(axes)`` draws it).
    """
    from ..scans.checkpoint import hold_directory
    from ..scans.record import finish_report
    from ..scans.result import ScanResult
    from .fc import run_fc

    record = ScanResult.load(directory).to_dict()
    lock = hold_directory(directory, "dir", "or run this after it")
    try:
        record["fc"] = run_fc(directory, n, seed=seed, points_per_chunk=chunk, progress=progress)
        return ScanResult(finish_report(record, directory, figure_format))
    finally:
        lock.close()
