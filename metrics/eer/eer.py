"""Equal error rate (EER) of a bona fide vs. spoof detector, as an `evaluate` metric.

The maths lives in `sonar_training.metrics` and is imported, not copied: `evaluate.load` copies this script into
its cache, but a plain import of the installed `modeling_sonar` package still resolves, so the metric, the
training loop and `evaluate_sonar.py` share one EER implementation.
"""

import datasets
import evaluate

from sonar_training.metrics import compute_eer


_DESCRIPTION = """
The equal error rate (EER) is the error rate at the operating point where the miss rate (bona fide rejected) equals
the false-alarm rate (spoof accepted), the primary metric of the ASVspoof challenges. It is computed exactly from the
sorted scores as the official ASVspoof `compute_eer` does, tied scores included (one operating point per trial). Lower
is better: 0 separates the classes perfectly, 0.5 is chance, 1 is perfectly reversed.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): detection scores, higher = more bona fide (e.g. the bona fide log-odds).
    references (`list` of `int`): class ids, bona fide `pos_label`, anything else spoof.
    pos_label (`int`, *optional*, defaults to 0): the id of the bona fide class.
    merge_ties (`bool`, *optional*, defaults to `False`): make each distinct score one operating point instead of each
        trial, as the official code does; only tied scores give a different EER (all-equal scores: 0.5 instead of 1).

Returns:
    eer (`float`): the EER as a fraction in [0, 1].
    threshold (`float`): the score threshold at the EER (scores above it are accepted as bona fide).

Examples:
    >>> eer = evaluate.load("./metrics/eer")
    >>> eer.compute(predictions=[2.0, 1.5, -1.0, 0.5], references=[0, 0, 1, 1])
    {'eer': 0.0, 'threshold': 0.5}
"""

_CITATION = """
@inproceedings{todisco2019asvspoof,
  title={{ASVspoof} 2019: Future Horizons in Spoofed and Fake Audio Detection},
  author={Todisco, Massimiliano and Wang, Xin and Vestman, Ville and Sahidullah, Md and Delgado, H{\\'e}ctor and
          Nautsch, Andreas and Yamagishi, Junichi and Evans, Nicholas and Kinnunen, Tomi and Lee, Kong Aik},
  booktitle={Interspeech},
  year={2019}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Eer(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://github.com/asvspoof-challenge/2021/tree/main/eval-package"],
        )

    def _compute(
        self, predictions: list[float], references: list[int], pos_label: int = 0, merge_ties: bool = False
    ) -> dict[str, float]:
        bonafide = [score for score, label in zip(predictions, references) if label == pos_label]
        spoof = [score for score, label in zip(predictions, references) if label != pos_label]
        eer, threshold = compute_eer(bonafide, spoof, merge_ties=merge_ties)
        return {"eer": eer, "threshold": threshold}
