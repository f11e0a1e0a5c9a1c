"""pfd_tf: privileged features distillation for recommender rankers on TensorFlow."""
from setuptools import find_packages, setup

setup(
    name="pfd_tf",
    version="0.1.0",
    description=(
        "Privileged Features Distillation (PFD) and model distillation for "
        "recommender rankers, trained with TensorFlow/Keras 2."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pfd_tf", "pfd_tf.*", "launch"]),
    include_package_data=True,
    install_requires=[
        "tensorflow==2.21.0",
        "tf_keras==2.21.0",
        "tensorboard>=2.20",  # TensorBoard logs: TensorFlow 2.21 no longer pulls it in
        "tensorflow-recommenders==0.7.7",
        "tensorflow-datasets>=4.9,<5",
        "numpy>=1.26",
        "absl-py>=2.0",
        "pyyaml>=6.0",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "matplotlib>=3.8"],  # pytest.ini: -n 2
        "plot": ["matplotlib>=3.8"],  # pfd-compare's PNG
        "peer": ["deepctr==0.9.4"],  # benchmarks/peer_baseline.py (0.9.3 does not import on TF 2.21)
    },
    entry_points={
        "console_scripts": [
            "pfd-train=pfd_tf.cli.train:run",
            "pfd-export=pfd_tf.cli.export:run",
            "pfd-eval=pfd_tf.cli.eval:run",
            "pfd-data=pfd_tf.cli.data:run",
            "pfd-vocab=pfd_tf.cli.vocab:run",
            "pfd-launch=launch.cli:run",
            "pfd-compare=pfd_tf.cli.compare:run",
            "pfd-report=pfd_tf.cli.report:run",
        ]
    },
)
