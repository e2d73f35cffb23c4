#!/bin/sh
# Retrain on one region of the training set and evaluate on the full validation set (the seed's script).
#   1. record:  sh run_glue_and_record_td.sh
#   2. select:  python data_selection.py --task_name sst2 --model_name bert-tiny --burn_out 4
#   3. retrain: REGION=ambiguous sh run_glue.sh      -> $OUTPUT_DIR/eval_results.json
# Every variable can be overridden from the environment, e.g.
#   TASK_NAME=mnli MODEL=roberta-base REGION=hard EPOCHS=3 sh run_glue.sh
# Extra flags are passed through to run_glue_and_record_td.py (see its --help), e.g. --record_dynamics
# to record the subset's own dynamics (to $DY_LOG_DIR/<task>/<model>_<region>).
set -eu

TASK_NAME="${TASK_NAME:-sst2}"                  # a GLUE classification task from the Hub
MODEL="${MODEL:-prajjwal1/bert-tiny}"           # model to retrain: Hub id or local folder
REGION="${REGION-ambiguous}"                    # hard | easy | ambiguous | random (a name in the indices file)
DY_LOG_DIR="${DY_LOG_DIR:-dy_log}"
SELECTION_MODEL="${SELECTION_MODEL:-}"        # run folder the selection was made from: $DY_LOG_DIR/<task>/$SELECTION_MODEL
                                                #   (default: the run name of MODEL, as the recording chose it)
SELECTION_FILE="${SELECTION_FILE:-}"            # any indices file (default: <that run folder>/three_regions_data_indices.json)
TRAIN_FILE="${TRAIN_FILE:-}"                    # set to train on a local csv/tsv/json/jsonl/parquet file instead
VALIDATION_FILE="${VALIDATION_FILE:-}"
DY_TASK_NAME="${DY_TASK_NAME:-}"                # task part of the run folder (default: TASK_NAME, or the training file's stem)
EPOCHS="${EPOCHS:-5}"
BATCH_SIZE="${BATCH_SIZE:-32}"
LR="${LR:-2e-5}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-128}"
SEED="${SEED:-42}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/${TASK_NAME}/$(basename "$MODEL")_${REGION}}"
PYTHON="${PYTHON:-python}"

# Flags as positional parameters (POSIX sh has no arrays); extra command-line flags stay last, so they win.
set -- \
  --model_name_or_path "$MODEL" \
  --with_data_selection \
  --num_train_epochs "$EPOCHS" \
  --per_device_train_batch_size "$BATCH_SIZE" \
  --learning_rate "$LR" \
  --max_seq_length "$MAX_SEQ_LENGTH" \
  --dy_log_dir "$DY_LOG_DIR" \
  --output_dir "$OUTPUT_DIR" \
  --save_strategy no \
  --report_to none \
  --seed "$SEED" \
  "$@"
if [ -n "$REGION" ]; then set -- --data_selection_region "$REGION" "$@"; fi  # empty: the file's only list
if [ -n "$SELECTION_MODEL" ]; then set -- --data_selection_model_name "$SELECTION_MODEL" "$@"; fi
if [ -n "$SELECTION_FILE" ]; then set -- --data_selection_file "$SELECTION_FILE" "$@"; fi
if [ -n "$DY_TASK_NAME" ]; then set -- --dy_task_name "$DY_TASK_NAME" "$@"; fi
if [ -n "$TRAIN_FILE" ]; then
  if [ -n "$VALIDATION_FILE" ]; then set -- --validation_file "$VALIDATION_FILE" "$@"; fi
  set -- --train_file "$TRAIN_FILE" "$@"
else
  set -- --task_name "$TASK_NAME" "$@"
fi

"$PYTHON" run_glue_and_record_td.py "$@"
echo "evaluation metrics: $OUTPUT_DIR/eval_results.json"
