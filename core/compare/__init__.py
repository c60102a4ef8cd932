"""The Compare grid (`studio.compare`): one character across prompts x models x seeds, side by side.
`models` holds the types, `service` the facade, `rows` the table writes, `sheet` the PNG export."""
from core.compare.models import CELLS_MAX, Comparison, ComparisonCell, ComparisonPlan, ComparisonSpec, ComparisonSummary
from core.compare.service import Compare

__all__ = ["CELLS_MAX", "Compare", "Comparison", "ComparisonCell", "ComparisonPlan", "ComparisonSpec",
           "ComparisonSummary"]
