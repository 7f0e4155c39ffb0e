"""GLUE metrics against values computed by hand from their textbook formulas."""
import math

import pytest
import torch

import plugins  # noqa: F401  (registers the GLUE metrics)
from plugins.evaluation import get_metric
from plugins.glue.tasks import GLUE_TASKS


def one_hot_scores(predictions, num_classes=2):
    """Logits whose arg-max is ``predictions``."""
    return torch.nn.functional.one_hot(torch.tensor(predictions), num_classes).float()


def test_cola_matthews_correlation_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    predictions = [1, 1, 0, 0, 0, 1, 1, 0]  # TP 3, TN 3, FP 1, FN 1
    mcc = (3 * 3 - 1 * 1) / math.sqrt((3 + 1) * (3 + 1) * (3 + 1) * (3 + 1))  # = 0.5
    values = get_metric('glue_cola').compute(one_hot_scores(predictions), torch.tensor(labels))
    assert values['matthews_corr'] == pytest.approx(100 * mcc) and values['accuracy'] == pytest.approx(75.0)
    constant = get_metric('glue_cola').compute(one_hot_scores([1] * 8), torch.tensor(labels))
    assert constant['matthews_corr'] == 0.0  # scikit-learn's convention for a constant prediction


def test_mrpc_f1_and_accuracy_by_hand_with_f1_primary():
    labels = [1, 1, 0, 0, 1]
    predictions = [1, 0, 0, 1, 1]  # TP 2, FP 1, FN 1, TN 1
    f1 = 2 * 2 / (2 * 2 + 1 + 1)
    values = get_metric('glue_mrpc').compute(one_hot_scores(predictions), torch.tensor(labels))
    assert values == pytest.approx({'f1': 100 * f1, 'accuracy': 60.0})
    assert get_metric('glue_mrpc').primary == 'f1' and get_metric('glue_qqp').primary == 'accuracy'
    # F1 counts class 1 (duplicate / equivalent) as positive: swapping the classes changes it.
    swapped = get_metric('glue_qqp').compute(one_hot_scores([1 - p for p in predictions]),
                                             torch.tensor([1 - label for label in labels]))
    assert swapped['accuracy'] == pytest.approx(60.0) and swapped['f1'] == pytest.approx(100 * 2 * 1 / (2 + 2))


def test_stsb_pearson_and_spearman_by_hand():
    outputs = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    scores = torch.tensor([[2.0], [4.0], [6.0], [9.0]])
    dx, dy = [-1.5, -0.5, 0.5, 1.5], [-3.25, -1.25, 0.75, 3.75]  # deviations from the means 2.5 and 5.25
    pearson = sum(a * b for a, b in zip(dx, dy)) / math.sqrt(sum(a * a for a in dx) * sum(b * b for b in dy))
    values = get_metric('glue_stsb').compute(outputs, scores)
    assert values['pearson'] == pytest.approx(100 * pearson)  # 11.5 / sqrt(5 x 26.75) = 0.99438...
    assert values['spearman'] == pytest.approx(100.0)  # same ranks
    assert values['pearson_spearman_mean'] == pytest.approx((100 * pearson + 100) / 2)
    assert values['mse'] == pytest.approx((1 + 4 + 9 + 25) / 4)
    reversed_ranks = get_metric('glue_stsb').compute(outputs, torch.tensor([4.0, 3.0, 2.0, 1.0]))
    assert reversed_ranks['spearman'] == pytest.approx(-100.0) and reversed_ranks['pearson'] == pytest.approx(-100.0)
    constant = get_metric('glue_stsb').compute(torch.ones(4, 1), scores)
    assert constant['pearson'] == 0.0 and constant['spearman'] == 0.0  # undefined: 0, never NaN
    assert get_metric('glue_stsb').primary == 'pearson' and get_metric('glue_stsb').higher_is_better


def test_accuracy_tasks_and_checkpoint_selection_direction():
    values = get_metric('accuracy').compute(one_hot_scores([0, 2, 1, 1], 3), torch.tensor([0, 2, 2, 1]))
    assert values == pytest.approx({'accuracy': 75.0})
    for task in GLUE_TASKS.values():
        metric = get_metric(task.metric)  # every task names a registered metric
        assert metric.higher_is_better and metric.is_better(51.0, 50.0) and not metric.is_better(49.0, 50.0)
    assert {task.metric for task in GLUE_TASKS.values()} == {'glue_cola', 'glue_stsb', 'glue_mrpc', 'glue_qqp',
                                                            'accuracy'}


def test_evaluate_style_metric_gives_the_registered_metric_over_its_batches():
    """The text script's metric objects compute exactly what the runner's evaluation computes (one function)."""
    from plugins.glue.metrics import EvaluateMetric

    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    logits = one_hot_scores([1, 1, 0, 0, 0, 1, 1, 0]) + 0.1 * torch.arange(16.0).reshape(8, 2)
    metric = EvaluateMetric('glue_cola')
    metric.add_batch(prediction_scores=logits[:5], references=torch.tensor(labels[:5]))
    metric.add_batch(prediction_scores=logits[5:], references=torch.tensor(labels[5:]))
    assert metric.compute() == get_metric('glue_cola').compute(logits, torch.tensor(labels))
    metric.add_batch(prediction_scores=logits[:4], references=torch.tensor(labels[:4]))  # empty again after compute
    assert metric.compute() == get_metric('glue_cola').compute(logits[:4], torch.tensor(labels[:4]))
    scores = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    stsb = EvaluateMetric('glue_stsb')
    stsb.add_batch(prediction_scores=scores, references=torch.tensor([2.0, 4.0, 6.0, 9.0]))  # the collator's (N,)
    assert stsb.compute()['pearson'] == pytest.approx(100 * 11.5 / math.sqrt(5 * 26.75))
    with pytest.raises(ValueError, match=r'glue_mrpc.*prediction_scores=.*argmax: false'):
        EvaluateMetric('glue_mrpc').add_batch(predictions=torch.tensor([1, 0]), references=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match='compute\\(\\) before any add_batch'):
        EvaluateMetric('accuracy').compute()
    from plugins.errors import ConfigError
    with pytest.raises(ConfigError, match="evaluation.metric must be one of .*got 'f1'"):
        EvaluateMetric('f1')
