"""Analysis of observed traffic: imbalance metrics, windows, change points, regions and
predicted-versus-observed comparison. Nothing here renders output."""

from lbguard.analysis.analyze import AnalysisOptions, analyse
from lbguard.analysis.onset import OnsetOptions
from lbguard.analysis.regions import RegionMap, load_region_map
from lbguard.analysis.result import LogAnalysis

__all__ = [
    "AnalysisOptions",
    "LogAnalysis",
    "OnsetOptions",
    "RegionMap",
    "analyse",
    "load_region_map",
]
