"""The rates histogram counts cells: its y axis shows whole numbers only."""

import numpy as np
import pytest

from neurodamus.tools import plot

matplotlib = pytest.importorskip("matplotlib")  # optional dependency ('neurodamus[plots]')


class KeepFigures:
    """matplotlib.pyplot, except that closed figures stay available for inspection."""

    def __init__(self, plt):
        self.plt, self.figures = plt, []

    def subplots(self, *args, **kwargs):
        fig, axes = self.plt.subplots(*args, **kwargs)
        self.figures.append(fig)
        return fig, axes

    def close(self, fig):
        pass


def test_rates_histogram_cell_axis_has_whole_number_ticks(tmp_path):
    plt = KeepFigures(plot._pyplot())
    # 3 cells with distinct rates: matplotlib's default ticks would be 0, 0.25, 0.5, ...
    spikes = {"cortex": (np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]),
                         np.array([0, 1, 1, 2, 2, 2]))}
    plot.plot_rates(plt, spikes, 1000.0, {"cortex": 3}, tmp_path / "rates.png")
    ax = plt.figures[0].axes[0]
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert len(ticks) >= 2
    assert all(float(t).is_integer() for t in ticks), ticks
    plt.plt.close(plt.figures[0])
