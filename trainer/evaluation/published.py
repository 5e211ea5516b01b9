"""Published results on the 400 RecPrompt test impressions of MIND-small dev
(``recprompt_test400_impressions.tsv``; rec-prompt ``README.md`` "Recommendation
Performance", arXiv 2312.10463 v4), in the report's units (fractions, not %).

The deep models' training data is not stated by their authors, and TopicPop there counts
popularity over all MIND-small behaviours, test impressions included (the data README).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PUBLISHED", "TRAINED_DEEP"]

PUBLISHED: Final[dict[str, dict[str, float]]] = {
    "Random": {"auc": 0.5089, "mrr": 0.3030, "ndcg@10": 0.4622},
    "MostPop": {"auc": 0.5247, "mrr": 0.3499, "ndcg@10": 0.4977},
    "TopicPop": {"auc": 0.6464, "mrr": 0.3935, "ndcg@10": 0.5359},
    "NRMS": {"auc": 0.6625, "mrr": 0.4360, "ndcg@10": 0.5682},
    "LSTUR": {"auc": 0.6717, "mrr": 0.4376, "ndcg@10": 0.5700},
    "NAML": {"auc": 0.6679, "mrr": 0.4403, "ndcg@10": 0.5718},
    "DKN": {"auc": 0.6628, "mrr": 0.4231, "ndcg@10": 0.5588},
    "NPA": {"auc": 0.6552, "mrr": 0.4316, "ndcg@10": 0.5647},
    "GPT-4 prompting (CoT)": {"auc": 0.6606, "mrr": 0.4401, "ndcg@10": 0.5712},
    "RecPrompt with GPT-4 (CoT)": {"auc": 0.6943, "mrr": 0.4865, "ndcg@10": 0.6073},
}
TRAINED_DEEP: Final = ("NRMS", "LSTUR", "NAML", "DKN", "NPA")
