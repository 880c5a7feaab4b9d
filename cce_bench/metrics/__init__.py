from .insertion_deletion import InsertionDeletion, auc, blur, insertion_deletion, saliency_ranks

__all__ = ["InsertionDeletion", "auc", "blur", "insertion_deletion", "saliency_ranks"]
