"""MSR-VTT multiple-choice QA: score the video against each candidate caption, predict the highest.

Zero-shot with the matching head's log P(matched); each video and each distinct caption is encoded once
(`actbert.tasks.scoring`), so a question costs only its C fused pairs. Accuracy via
`actbert.metrics.qa.mc_accuracy` (ties go to the first candidate; the pessimistic accuracy and the number
of tied questions are reported beside it), next to chance = 1 / C (20 % for 5 candidates).
"""
from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from actbert.tasks import scoring as S

__all__ = ["qa_scores", "evaluate_qa", "add_evaluate_arguments", "run_evaluate", "add_finetune_arguments",
           "run_finetune"]


def _check(questions) -> int:
    if len(questions) == 0:
        raise ValueError("no question to answer")
    n = len(questions[0].options)
    for q in questions:
        if len(q.options) != n:
            raise ValueError(f"question {q.qid!r} has {len(q.options)} candidates, the first has {n}: "
                             "all questions must have the same number")
    return n


def qa_scores(model, tokenizer, questions: Sequence, store, batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """`[Q, C]` log P(matched) of each question's video (`clip_name`, whole video) with each of its options.

    `questions` are `McQuestion`s (or anything with ``qid, clip_name, options``).
    """
    C = _check(questions)
    texts = list(dict.fromkeys(o for q in questions for o in q.options))
    t_pos = {t: i for i, t in enumerate(texts)}
    vids = list(dict.fromkeys(q.clip_name for q in questions))
    v_pos = {v: i for i, v in enumerate(vids)}
    with S.eval_mode(model):
        ids, mask = S.tokenize(tokenizer, texts, model.config.max_text_len)
        text = S.encode_texts(model, ids, mask, batch_size, progress)
        video = S.encode_windows(model, S.windows_for(store, [(v, None, None) for v in vids], model.config,
                                                      "multiple-choice questions"), batch_size, progress)
        ti = np.array([t_pos[o] for q in questions for o in q.options])
        vj = np.repeat([v_pos[q.clip_name] for q in questions], C)
        scores = S.score_pairs(model, text, video, ti, vj, batch_size, progress).reshape(len(questions), C)
    return S.finite_or_raise(scores, "multiple-choice scores")


def evaluate_qa(model, tokenizer, questions: Sequence, store, batch_size: int = 256, progress: bool = True) -> dict:
    """``accuracy`` (percent) and the rest of `mc_accuracy`, plus ``chance`` and ``n_candidates``."""
    from actbert.metrics.qa import mc_accuracy

    scores = qa_scores(model, tokenizer, questions, store, batch_size, progress)
    out = mc_accuracy(scores, np.array([q.answer for q in questions], dtype=np.int64))
    out.update(chance=100.0 / scores.shape[1], n_candidates=int(scores.shape[1]),
               tie_rule="first candidate wins ties (argmax)")
    return out


HAS_FINETUNE = False  # `actbert finetune` explains and exits 2, whatever options it is given


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("MSR-VTT multiple choice: the video is scored against each candidate caption with the "
                          "matching head; the highest wins; accuracy (chance = 1 / candidates).")
    S.add_common_arguments(parser)
    parser.add_argument("--annotations", required=True, help="multiple-choice jsonl (qid, clip_name, answer, options)")
    parser.add_argument("--dataset", default="msrvtt", help="dataset name written to results.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (a smoke test, labelled)")


def run_evaluate(args: argparse.Namespace) -> int:
    from actbert.data.formats import read_msrvtt_mc
    from actbert.data.store import FeatureStore
    from actbert.tasks.results import write_results

    questions = read_msrvtt_mc(args.annotations)
    split = "test"
    if args.limit:
        questions, split = questions[:args.limit], f"test[:{args.limit}]"
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    m = evaluate_qa(model, tokenizer, questions, FeatureStore(args.store), args.batch_size, not args.no_progress)
    write_results(args.out, "qa", args.dataset, "multiple choice, highest matching score, zero-shot", split, m,
                  str(args.model), S.run_config(args))
    print(f"{args.dataset} MC {split}: accuracy {m['accuracy']:.2f} % over {m['n']} questions "
          f"(chance {m['chance']:.1f} %) -> {args.out}")
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Multiple-choice QA has no fine-tuning of its own: it scores candidates with the "
                          "matching head. To evaluate a fine-tuned model, fine-tune retrieval on MSR-VTT's official "
                          "train split (`actbert finetune retrieval --dataset msrvtt --train-annotations "
                          "MSRVTT_data.json`, no --train-ids) and pass that checkpoint to `actbert evaluate qa`. "
                          "Not on the 9k list: it holds 1,990 test-split videos that the MC test uses.")


def run_finetune(args: argparse.Namespace) -> int:
    import sys

    print("actbert finetune qa: no task-specific fine-tuning; use `actbert finetune retrieval --dataset msrvtt` "
          "and evaluate qa with the resulting checkpoint", file=sys.stderr)
    return 2
