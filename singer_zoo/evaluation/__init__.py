"""The paper's evaluations (sections 3.4, 3.5; Tables 1, 2; Figures 3, 4, 5, 7).

Arrays in, numbers and files out, so the training code and the CLI can call them:

- `protocols`: `cv_folds` / `cv_fold` (10-fold singer classification), `embedding_split`.
- `metrics`: window- and recording-level accuracy, `summarise_folds`, "0.742(0.022)".
- `knn`: leave-one-out k-NN accuracy on performance vectors (singer and song labels).
- `verification`: singer-verification equal error rate (all pairs and hard pairs).
- `baseline`: the SVM on handcrafted features and the baseline performance vectors.
- `plots`: loss curves, t-SNE, k-NN bars (PNG).
- `report`: Tables 1 and 2 in the paper's layout, markdown and JSON.

`baseline` and `plots` are imported on use (`singer_zoo.evaluation.plots`), so that the
metrics do not pull in matplotlib or the audio stack.
"""
from singer_zoo.evaluation.knn import KS, knn_accuracies, knn_table
from singer_zoo.evaluation.metrics import (format_mean_std, recording_accuracy,
                                           recording_scores, summarise_folds, window_accuracy)
from singer_zoo.evaluation.protocols import Fold, cv_fold, cv_folds, embedding_split
from singer_zoo.evaluation.report import table1_markdown, table2_markdown, write_report
from singer_zoo.evaluation.verification import EERResult, verification_eer, verification_report

__all__ = ["EERResult", "Fold", "KS", "cv_fold", "cv_folds", "embedding_split",
           "format_mean_std", "knn_accuracies", "knn_table", "recording_accuracy",
           "recording_scores", "summarise_folds", "table1_markdown", "table2_markdown",
           "verification_eer", "verification_report", "window_accuracy", "write_report"]
