"""Fine-tune a token classifier (NER) on tagged sentences and record its training dynamics, word by word.

The flags of transformers' run_ner.py. Every training word's gold-tag log-probability, predicted tag,
margin and EL2N (from its first sub-token, as run_ner.py labels words) are recorded once per epoch to
<dy_log_dir>/<task>/<model>/training_dynamics/dynamics_epoch_<e>.jsonl, one line per sentence.

  training-dynamics record-ner --model_name_or_path bert-base-cased --dataset_name conll2003 \\
      --output_dir outputs/conll-bert --num_train_epochs 3 --learning_rate 5e-5
  training-dynamics record-ner --model_name_or_path DIR --train_file train.jsonl \\
      --text_column_name tokens --label_column_name ner_tags --output_dir out --num_train_epochs 8

Any flag of transformers.TrainingArguments is accepted; --help lists the common ones, --help_all every one.
"""

from __future__ import annotations


def _build_ner_trainer(*args, **kwargs):
    """:func:`training_dynamics.workflows.train.build_ner_trainer`, imported (with torch) only once the data passed its checks."""
    from training_dynamics.workflows.train import build_ner_trainer

    return build_ner_trainer(*args, **kwargs)


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics record-ner") -> int:
    """Train, record, save the model, evaluate."""
    from training_dynamics.kinds.token.arguments import TokenDataArguments
    from training_dynamics.cli.record import main as record_main

    return record_main(argv, prog=prog, data_class=TokenDataArguments, doc=__doc__, builder=_build_ner_trainer)
