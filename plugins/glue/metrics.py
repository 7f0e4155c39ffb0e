"""GLUE metrics registered with :func:`plugins.evaluation.register_metric`, in percent like the paper's tables.

``primary`` is the figure that selects checkpoints and that the paper's Tables 3 and 5 report:

=============  ===============================  ==========================
metric         task(s)                          primary
=============  ===============================  ==========================
``glue_cola``  CoLA                             Matthews correlation
``glue_stsb``  STS-B (1 output, regression)     Pearson (also Spearman)
``glue_mrpc``  MRPC                             F1 (also accuracy)
``glue_qqp``   QQP                              accuracy (also F1)
``accuracy``   SST-2, MNLI, QNLI, RTE, WNLI     accuracy (already registered)
=============  ===============================  ==========================

MNLI's matched and mismatched accuracies are the ``test`` and ``extra_tests['mismatched']`` results of
the runner (the config's ``test.extra_test_data_loaders``). F1 counts class 1 (``equivalent``,
``duplicate``) as positive. A correlation is undefined for constant outputs; it is reported as 0 then
(as scikit-learn does for the Matthews correlation), so that checkpoint selection never compares NaN.

:class:`EvaluateMetric` puts any of them behind Hugging Face ``evaluate``'s ``add_batch`` / ``compute`` API for
the ``metrics:`` section of torchdistill's text-classification script: the same function computes the figures
under that script and under our runner.
"""
import math

import numpy as np
import torch

from ..evaluation import get_metric, register_metric

__all__ = ['glue_cola', 'glue_stsb', 'glue_mrpc', 'glue_qqp', 'EvaluateMetric']


def _predictions(outputs):
    return outputs.argmax(dim=1).numpy()


def _accuracy_f1(outputs, targets):
    from sklearn.metrics import accuracy_score, f1_score

    predictions, labels = _predictions(outputs), targets.numpy()
    return {'accuracy': 100.0 * accuracy_score(labels, predictions),
            'f1': 100.0 * f1_score(labels, predictions, pos_label=1, zero_division=0)}


def _correlation(function, predictions, labels):
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    value = float(function(predictions, labels)[0])
    return 0.0 if math.isnan(value) else value


@register_metric('glue_cola', primary='matthews_corr')
def glue_cola(outputs, targets):
    """CoLA: Matthews correlation coefficient x 100 (and accuracy)."""
    from sklearn.metrics import matthews_corrcoef

    predictions, labels = _predictions(outputs), targets.numpy()
    return {'matthews_corr': 100.0 * matthews_corrcoef(labels, predictions),
            'accuracy': 100.0 * float(np.mean(predictions == labels))}


@register_metric('glue_stsb', primary='pearson')
def glue_stsb(outputs, targets):
    """STS-B: Pearson and Spearman correlations x 100 of the single output with the score, and their mean."""
    from scipy.stats import pearsonr, spearmanr

    predictions = outputs.reshape(-1).double().numpy()
    labels = targets.reshape(-1).double().numpy()
    pearson = 100.0 * _correlation(pearsonr, predictions, labels)
    spearman = 100.0 * _correlation(spearmanr, predictions, labels)
    return {'pearson': pearson, 'spearman': spearman, 'pearson_spearman_mean': (pearson + spearman) / 2,
            'mse': float(np.mean((predictions - labels) ** 2))}


@register_metric('glue_mrpc', primary='f1')
def glue_mrpc(outputs, targets):
    """MRPC: F1 of the ``equivalent`` class x 100 (primary, as the paper reports) and accuracy."""
    return _accuracy_f1(outputs, targets)


@register_metric('glue_qqp', primary='accuracy')
def glue_qqp(outputs, targets):
    """QQP: accuracy (primary, as the paper's Table 3 reports) and F1 of the ``duplicate`` class, x 100."""
    return _accuracy_f1(outputs, targets)


class EvaluateMetric:
    """A registered metric (:mod:`plugins.evaluation`) with Hugging Face ``evaluate``'s API, for the ``metrics:``
    section of torchdistill's ``examples/hf_transformers/text_classification.py``.

    ``add_batch(prediction_scores=logits, references=labels)`` collects a batch; ``compute()`` returns the metric's
    dict over everything collected (in percent, as our runner reports it) and starts empty again. The script passes
    the logits as ``prediction_scores`` when ``evaluate.metrics.<key>.argmax`` is false; arg-max predictions are
    refused, since the regression and the runner's own evaluation need the outputs themselves.

    .. code-block:: yaml

        metrics:
          glue_cola: !import_call
            key: 'plugins.glue.metrics.EvaluateMetric'
            init: {kwargs: {metric: 'glue_cola'}}
        evaluate:
          main_metric: 'matthews_corr'       # the metric's primary figure
          metrics: {glue_cola: {argmax: false}}
    """

    def __init__(self, metric: str):
        self.metric = get_metric(metric)
        self._outputs, self._references = [], []

    def add_batch(self, predictions=None, references=None, prediction_scores=None) -> None:
        if prediction_scores is None or references is None:
            raise ValueError(f'metric {self.metric.name!r} takes the logits and the labels: '
                             'add_batch(prediction_scores=..., references=...); in the text script set '
                             f'evaluate.metrics.{self.metric.name}.argmax: false')
        self._outputs.append(torch.as_tensor(prediction_scores).detach().float().cpu())
        self._references.append(torch.as_tensor(references).detach().cpu())

    def compute(self) -> dict:
        if not self._outputs:
            raise ValueError(f'metric {self.metric.name!r}: compute() before any add_batch()')
        outputs, references = torch.cat(self._outputs), torch.cat(self._references)
        self._outputs, self._references = [], []
        return self.metric.compute(outputs, references)

    def __repr__(self):
        return f'EvaluateMetric({self.metric.name!r})'
