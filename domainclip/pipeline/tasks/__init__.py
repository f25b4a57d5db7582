"""Evaluation tasks, one module each: which run depends on what the evaluated split carries.

========== ============================================================ =================================
task       runs when the records have                                     keys
========== ============================================================ =================================
multilabel finding / attribute labels (truth, or silver from the texts)   ``zeroshot.auc.*``, ``linear_probe.auc.*``
multiclass a class ``label``                                              ``zeroshot.top1``, ``*.balanced_accuracy``
retrieval  texts (one or several per image: many-to-many positives)       ``retrieval.*``
regression numeric ``targets``                                            ``regression.<target>.r2|rmse|mae``
survival   ``time`` and ``event`` on every split                          ``survival.*``
========== ============================================================ =================================
"""
