#!/bin/sh
# Fine-tune and record training dynamics (the seed's script). Every variable can be overridden
# from the environment, e.g.  TASK_NAME=mnli MODEL=roberta-base EPOCHS=5 sh run_glue_and_record_td.sh
# Extra flags are passed through to run_glue_and_record_td.py (see its --help).
#
# Multi-GPU (or multi-process on CPU; gloo is picked automatically without a GPU):
#   torchrun --nproc_per_node 4 run_glue_and_record_td.py --task_name sst2 --model_name_or_path prajjwal1/bert-tiny ...
set -eu

TASK_NAME="${TASK_NAME:-sst2}"                  # a GLUE classification task from the Hub
MODEL="${MODEL:-prajjwal1/bert-tiny}"           # Hub id or local folder
EPOCHS="${EPOCHS:-5}"
TRAIN_FILE="${TRAIN_FILE:-}"                    # set to train on a local csv/tsv/json/jsonl/parquet file instead
VALIDATION_FILE="${VALIDATION_FILE:-}"
TD_MODE="${TD_MODE:-in_training}"               # or post_epoch
DY_LOG_DIR="${DY_LOG_DIR:-dy_log}"
BATCH_SIZE="${BATCH_SIZE:-32}"
LR="${LR:-2e-5}"
SEED="${SEED:-42}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/${TASK_NAME}/$(basename "$MODEL")}"
PYTHON="${PYTHON:-python}"

# Flags as positional parameters (POSIX sh has no arrays); extra command-line flags stay last, so they win.
set -- \
  --model_name_or_path "$MODEL" \
  --num_train_epochs "$EPOCHS" \
  --per_device_train_batch_size "$BATCH_SIZE" \
  --learning_rate "$LR" \
  --max_seq_length 128 \
  --td_mode "$TD_MODE" \
  --dy_log_dir "$DY_LOG_DIR" \
  --output_dir "$OUTPUT_DIR" \
  --save_strategy epoch \
  --save_total_limit 1 \
  --seed "$SEED" \
  "$@"
if [ -n "$TRAIN_FILE" ]; then
  if [ -n "$VALIDATION_FILE" ]; then set -- --validation_file "$VALIDATION_FILE" "$@"; fi
  set -- --train_file "$TRAIN_FILE" "$@"
else
  set -- --task_name "$TASK_NAME" "$@"
fi

exec "$PYTHON" run_glue_and_record_td.py "$@"
