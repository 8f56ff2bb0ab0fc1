"""The demo: material that shows clgate at work and that tests build on; nothing in production imports it.

`clgate demo` (`run`; its chain scenario, `chain`), a ledger from nothing (`bootstrap`), planted
poison with ground truth (`attacks`), a small LoRA fine-tune (`training`), tiny artifacts for tests
(`factories`), and the demo's task and clean sets (`data/`).
"""

import lazy_loader

# Names are imported from their modules on first use: the factories do not load torch for a ledger.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "attacks": [
            "bundled_clean_records",
            "bundled_memory_entries",
            "injected_memory_entries",
            "is_poisoned",
            "poison_record",
            "poisoned_set",
        ],
        "bootstrap": ["Bootstrap", "bootstrap_ledger"],
        "factories": [
            "contact_record",
            "make_dataset",
            "make_memory_entries",
            "make_memory_store",
            "make_tiny_lora",
            "make_tiny_model",
            "tiny_tokenizer",
        ],
        "run": ["demo_policy", "prepare_data", "run_demo"],
        "training": ["TrainingRun", "merge_lora", "train_lora"],
    },
)
