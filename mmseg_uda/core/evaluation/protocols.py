"""How a run is scored: which classes its headline mIoU averages, which further mIoUs it
reports, which classes are its tail. One record per protocol; a config's protocol follows from
its labelled training set (SYNTHIA has no terrain, truck or train)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mmseg_uda.datasets.label_maps import (
    CLASSES,
    MIOU13_TRAINIDS,
    MIOU16_TRAINIDS,
    TAIL_TRAINIDS,
)


@dataclass(frozen=True)
class EvalProtocol:
    name: str
    evaluated: tuple[int, ...]   # train ids averaged by the headline mIoU
    headline: str                # the headline's key in final_metrics.json and the tables
    # Further mIoUs the evaluation reports: final_metrics key -> train ids.
    subsets: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def tail(self) -> tuple[int, ...]:
        """The tail classes this protocol evaluates (SYNTHIA: 7 of the 9)."""
        return tuple(c for c in TAIL_TRAINIDS if c in self.evaluated)

    @property
    def reported(self) -> tuple[str, ...]:
        """Every mIoU a per-class table shows: the subsets, then mIoU19."""
        return (*self.subsets, 'miou19')

    def class_names(self, ids: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(CLASSES[c] for c in ids)


CITYSCAPES19 = EvalProtocol('cityscapes19', tuple(range(len(CLASSES))), 'miou19')
# SYNTHIA→Cityscapes (DAFormer and HRDA papers): mIoU16 is the headline, mIoU13 also reported.
SYNTHIA16 = EvalProtocol('synthia16', MIOU16_TRAINIDS, 'miou16',
                         {'miou16': MIOU16_TRAINIDS, 'miou13': MIOU13_TRAINIDS})
# The labelled training set's dataset type -> its protocol; any other type: CITYSCAPES19.
PROTOCOL_OF_SOURCE_TYPE: Mapping[str, EvalProtocol] = {'SynthiaDataset': SYNTHIA16}


def evaluation_protocol(cfg: Mapping) -> EvalProtocol:
    """The protocol of a config: ``evaluation.synthia_subsets`` (True/False) decides when set;
    otherwise the type of ``data.train.source`` (or of ``data.train``, one domain) does."""
    explicit = (cfg.get('evaluation') or {}).get('synthia_subsets')
    if explicit is not None:
        return SYNTHIA16 if explicit else CITYSCAPES19
    train = (cfg.get('data') or {}).get('train') or {}
    source = train.get('source', train)
    return PROTOCOL_OF_SOURCE_TYPE.get(str(source.get('type', '')), CITYSCAPES19)
