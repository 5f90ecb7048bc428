#!/usr/bin/env bash
# The shipped CIFAR-10 family (README.md beside this script), rebuilt in the repository root from the committed supernet:
#   1. .cifar10     the supernet's own sub-networks (no retraining): extracted, BN calibrated on the held-out split
#   2. .cifar10_ft  each member fine-tuned standalone: the largest on the labels, the others distilled from it
# It REPLACES the family in checkpoints/, so run it in a scratch checkout, e.g.
#   git worktree add ../nested && cd ../nested && PATH=$OLDPWD/.venv/bin:$PATH \
#     ANAS_ZOO_DATA=... PYTHONPATH=$PWD benchmarks/results/cifar10_training/nested-family/rebuild.sh
# Every step resumes where it stopped (anas-zoo finetune keeps its state in runs/finetune/NAME.TAG or --state-dir);
# logs go to runs/finetune/*.log. The genomes are family.json beside this script: a nested path from the smallest
# sub-network to the largest, each member at least its predecessor in every gene.
set -euo pipefail
here=benchmarks/results/cifar10_training/nested-family
supernet=checkpoints/attentivenas_cifar10_supernet.safetensors
teacher=attentivenas_cifar10_a6.cifar10_ft
mkdir -p runs/finetune
if [ ! -f checkpoints/attentivenas_cifar10_a6.cifar10.json ] || ! grep -q '"kind"' checkpoints/attentivenas_cifar10_a6.cifar10.json; then
  anas-zoo extract --supernet "$supernet" --family "$here/family.json" --prefix attentivenas_cifar10 \
    --out checkpoints --dtype float16 --json > runs/finetune/extract.json
fi
ft() {  # NAME EPOCHS [finetune options]: stage 1, from the supernet's weights
  local name=$1 epochs=$2; shift 2
  [ -f "checkpoints/$name.cifar10_ft.json" ] && return 0
  anas-zoo finetune "$name.cifar10" --epochs "$epochs" "$@" >> "runs/finetune/$name.log" 2>&1
}
again() {  # STAGE NAME EPOCHS [finetune options]: one more stage from the fine-tuned weights, then it replaces them
  local stage=$1 name=$2 epochs=$3; shift 3
  mkdir -p "runs/$stage"
  [ -f "runs/$stage/$name.done" ] && return 0
  anas-zoo finetune "$name.cifar10_ft" --epochs "$epochs" --out "runs/$stage" --state-dir "runs/finetune/$name.$stage" \
    "$@" >> "runs/finetune/$name.log" 2>&1
  mv "runs/$stage/$name.cifar10_ft.json" "runs/$stage/$name.cifar10_ft.safetensors" checkpoints/
  touch "runs/$stage/$name.done"
}
ft attentivenas_cifar10_a6 4 --lr 0.1 --kd-weight 0                # the teacher: 4 epochs on the labels
for m in 0 1 2 3 4 5; do
  ft attentivenas_cifar10_a$m 2 --teacher $teacher                 # 2 epochs, lr 0.05, label CE + KD
done
for m in 0 1 2; do
  again stage2 attentivenas_cifar10_a$m 1 --lr 0.02 --teacher $teacher    # a second, 1-epoch stage at lr 0.02
done
# a third stage at lr 0.02, still taught by a6's first-stage weights: 4 epochs for a0 and a1, 3 for a2, 2 for a3
# (a3 and a2's fourth stage only because a2, then a1, came within 0.3 points of the member above)
for m in 0 1; do
  again stage3 attentivenas_cifar10_a$m 4 --lr 0.02 --teacher $teacher
done
again stage3 attentivenas_cifar10_a2 3 --lr 0.02 --teacher $teacher
again stage3 attentivenas_cifar10_a3 2 --lr 0.02 --teacher $teacher
again stage4 attentivenas_cifar10_a2 2 --lr 0.01 --teacher $teacher
# last, the teacher itself: 6 epochs on the labels with CutMix on half the steps (labels alone gained nothing)
again stage3 attentivenas_cifar10_a6 6 --lr 0.05 --kd-weight 0 --cutmix 0.5
# a6 ships as a soup: the uniform average of those weights and of five more runs of it (README.md beside this script),
# four from those weights with other regularisers, one from the supernet's own a6
a6=attentivenas_cifar10_a6
ingredient() {  # DIR FROM EPOCHS [finetune options]: one more a6 run, written to runs/DIR for the soup
  local dir=$1 from=$2 epochs=$3; shift 3
  [ -f "runs/$dir/$a6.cifar10_ft.json" ] && return 0
  anas-zoo finetune "$from" --epochs "$epochs" --out "runs/$dir" --state-dir "runs/finetune/$a6.$dir" "$@" \
    >> "runs/finetune/$a6.log" 2>&1
}
if ! grep -q '"ingredients"' "checkpoints/$a6.cifar10_ft.json"; then
  ingredient stage5 $a6.cifar10_ft 10 --lr 0.05 --kd-weight 0 --cutmix 0.5
  ingredient born-again $a6.cifar10_ft 8 --lr 0.05 --cutmix 0.5              # taught by a frozen copy of its start
  ingredient a6-wd $a6.cifar10_ft 8 --lr 0.05 --weight-decay 2e-3 --kd-weight 0 --cutmix 1.0
  ingredient a6-ta $a6.cifar10_ft 8 --lr 0.05 --kd-weight 0 --cutmix 0.5 --trivial-augment
  ingredient a6-long16 $a6.cifar10 16 --lr 0.1 --kd-weight 0 --cutmix 0.5 --trivial-augment
  anas-zoo soup $a6.cifar10_ft runs/{stage5,born-again,a6-wd,a6-ta,a6-long16}/$a6.cifar10_ft.json --out runs/soup \
    >> "runs/finetune/$a6.log" 2>&1
  mv "runs/soup/$a6.cifar10_ft.json" "runs/soup/$a6.cifar10_ft.safetensors" checkpoints/
fi
