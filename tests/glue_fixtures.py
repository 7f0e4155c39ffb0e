"""Offline GLUE test material: official-layout TSVs, tiny tokenizers and tiny pretrained-style checkpoints.

Everything is written to a temporary folder in the formats the real code reads: GLUE TSV folders as the
GLUE download script leaves them, a WordPiece ``BertTokenizer`` and a byte-level BPE ``RobertaTokenizer``
built from a small vocabulary, and BERT / RoBERTa encoders (no classification head, like a hub checkpoint)
saved with ``save_pretrained``, and fine-tuned-style sequence classifiers (a teacher's checkpoint folder). The
expected labels use the Hugging Face ``glue`` class order, written out here independently of ``plugins.glue.tasks``.
"""
import os
import random

VOCAB = ('the a movie film plot actor dog cat man woman is was not very good bad great awful sat ran on '
         'mat park question answer why how what did it he she').split()
# Class names in the Hugging Face ``glue`` order (datasets' glue.py ``label_classes``).
HF_LABELS = {
    'cola': ['unacceptable', 'acceptable'], 'sst2': ['negative', 'positive'],
    'mrpc': ['not_equivalent', 'equivalent'], 'qqp': ['not_duplicate', 'duplicate'],
    'mnli': ['entailment', 'neutral', 'contradiction'], 'qnli': ['entailment', 'not_entailment'],
    'rte': ['entailment', 'not_entailment'], 'wnli': ['not_entailment', 'entailment'],
}
TASK_DIRS = {'cola': 'CoLA', 'sst2': 'SST-2', 'mrpc': 'MRPC', 'stsb': 'STS-B', 'qqp': 'QQP', 'mnli': 'MNLI',
             'qnli': 'QNLI', 'rte': 'RTE', 'wnli': 'WNLI'}
TINY_ARCHITECTURE = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                         max_position_embeddings=160)


def _sentence(rng, label=None, length=6):
    words = [rng.choice(VOCAB) for _ in range(length)]
    if label is not None:  # a learnable cue: 'good' for class 1, 'bad' for class 0
        words[rng.randrange(length)] = 'good' if label else 'bad'
    return ' '.join(words)


def _write(path, lines, bom=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8-sig' if bom else 'utf-8', newline='') as file:
        file.write(''.join(line + '\n' for line in lines))


def _examples(task, rng, count):
    """[(texts tuple, label index or score)] in the Hugging Face label order."""
    examples = []
    for i in range(count):
        if task == 'stsb':
            examples.append(((_sentence(rng), _sentence(rng)), round(5.0 * i / max(count - 1, 1), 3)))
            continue
        label = i % len(HF_LABELS[task])
        if task in ('cola', 'sst2'):
            texts = (_sentence(rng, label % 2),)
            if i == 1:  # quotes stay literal (the files are read without quoting)
                texts = (f'the "{texts[0]}',)
        else:
            texts = (_sentence(rng, label % 2), _sentence(rng))
        examples.append((texts, label))
    return examples


def write_task_tsvs(root, task, num_train=40, num_dev=12, seed=0):
    """Writes ``root/<TaskDir>/train.tsv`` and the dev file(s) of ``task`` in the official GLUE layout.

    Returns ``{file name: [(texts, label)]}`` with labels as Hugging Face class indices (STS-B: scores).
    """
    rng = random.Random(f'{task}-{seed}')
    folder = os.path.join(root, TASK_DIRS[task])
    files = {'train.tsv': _examples(task, rng, num_train)}
    dev_names = ('dev_matched.tsv', 'dev_mismatched.tsv') if task == 'mnli' else ('dev.tsv',)
    for name in dev_names:
        files[name] = _examples(task, rng, num_dev)
    for name, examples in files.items():
        _write(os.path.join(folder, name), _rows(task, name, examples), bom=task == 'mrpc' and name == 'train.tsv')
    return files


def _rows(task, file_name, examples):
    names = HF_LABELS.get(task)
    if task == 'cola':  # no header: source, label, original judgement, sentence
        return [f"gj04\t{label}\t{'' if label else '*'}\t{texts[0]}" for texts, label in examples]
    if task == 'sst2':
        return ['sentence\tlabel'] + [f'{texts[0]}\t{label}' for texts, label in examples]
    if task == 'mrpc':
        return ['Quality\t#1 ID\t#2 ID\t#1 String\t#2 String'] + [
            f'{label}\t{1000 + i}\t{2000 + i}\t{texts[0]}\t{texts[1]}' for i, (texts, label) in enumerate(examples)]
    if task == 'stsb':
        return ['index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore'] + [
            f'{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{texts[0]}\t{texts[1]}\t{score:.3f}'
            for i, (texts, score) in enumerate(examples)]
    if task == 'qqp':
        rows = ['id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate'] + [
            f'{i}\t{2 * i}\t{2 * i + 1}\t{texts[0]}\t{texts[1]}\t{label}' for i, (texts, label) in enumerate(examples)]
        if file_name == 'train.tsv':
            rows.insert(3, '999\t1998\ta question cut short by a stray newline')  # the real file has such rows
        return rows
    if task == 'mnli':
        dev = file_name != 'train.tsv'
        labels_header = 'label1\tlabel2\tlabel3\tlabel4\tlabel5' if dev else 'label1'
        header = ('index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t'
                  f'sentence1_parse\tsentence2_parse\tsentence1\tsentence2\t{labels_header}\tgold_label')
        rows = [header]
        for i, (texts, label) in enumerate(examples):
            annotator_labels = '\t'.join([names[label]] * (5 if dev else 1))
            rows.append(f'{i}\t{31193 + i}\t{31193 + i}n\tfiction\t( {texts[0]} )\t( {texts[1]} )\t(ROOT {texts[0]})\t'
                        f'(ROOT {texts[1]})\t{texts[0]}\t{texts[1]}\t{annotator_labels}\t{names[label]}')
        return rows
    header = 'index\tquestion\tsentence\tlabel' if task == 'qnli' else 'index\tsentence1\tsentence2\tlabel'
    as_text = task in ('qnli', 'rte')  # QNLI and RTE name their labels; WNLI writes 0 / 1
    return [header] + [f'{i}\t{texts[0]}\t{texts[1]}\t{names[label] if as_text else label}'
                       for i, (texts, label) in enumerate(examples)]


def write_glue_tsvs(root, tasks=tuple(TASK_DIRS), **kwargs):
    """``{task: {file name: [(texts, label)]}}`` after writing every task's folder under ``root``."""
    return {task: write_task_tsvs(root, task, **kwargs) for task in tasks}


def make_bert_tokenizer(path):
    """A WordPiece ``BertTokenizer`` over :data:`VOCAB`, saved with ``save_pretrained``; returns ``path``."""
    from transformers import BertTokenizer

    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '"'] + list(VOCAB)
    BertTokenizer(vocab={token: i for i, token in enumerate(tokens)}).save_pretrained(path)
    return path


def make_roberta_tokenizer(path):
    """A byte-level BPE ``RobertaTokenizer``: the 256 byte symbols plus merges spelling each word of
    :data:`VOCAB` (with and without the leading-space marker 'Ġ'); saved with ``save_pretrained``."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    vocab = {token: i for i, token in enumerate(['<s>', '<pad>', '</s>', '<unk>', '<mask>'])}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    merges = []
    for word in VOCAB:
        for spelling in ('Ġ' + word, word):
            prefix = spelling[0]
            for char in spelling[1:]:
                if (prefix, char) not in merges:
                    merges.append((prefix, char))
                prefix += char
                vocab.setdefault(prefix, len(vocab))
    RobertaTokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    return path


def make_encoder(path, model_type, tokenizer_path, **architecture):
    """A tiny untrained BERT / RoBERTa encoder (no head, like a hub checkpoint) saved with ``save_pretrained``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    fields = dict(TINY_ARCHITECTURE, **architecture)
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  **fields)
    AutoModel.from_config(config).save_pretrained(path)
    return path


def make_family(root, family):
    """Tokenizer and teacher / TA / student checkpoints of ``family`` under ``root``; ``{env var: path}``."""
    model_type, make_tokenizer = ('bert', make_bert_tokenizer) if family == 'bert' else \
        ('roberta', make_roberta_tokenizer)
    tokenizer = make_tokenizer(os.path.join(root, f'{family}_tokenizer'))
    env = {'KD_GLUE_TOKENIZER': tokenizer}
    for role, layers in (('TEACHER', 2), ('TA', 1), ('STUDENT', 1)):
        env[f'KD_GLUE_{role}'] = make_encoder(os.path.join(root, f'{family}_{role.lower()}'), model_type, tokenizer,
                                              num_hidden_layers=layers)
    return env


def make_classifier_folder(path, encoder_path, num_labels, tokenizer_path=None, seed=0):
    """A sequence classifier on ``encoder_path`` (its head initialised with ``seed``) saved with ``save_pretrained``,
    with the tokenizer when given: what a fine-tuning run of torchdistill's text script leaves as a teacher."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_pretrained(encoder_path, num_labels=num_labels).save_pretrained(path)
    if tokenizer_path is not None:
        AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(path)
    return path
