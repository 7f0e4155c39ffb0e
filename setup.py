from setuptools import find_packages, setup

setup(
    name='annealing-continuation-kd',
    version='0.1.0',
    description='Annealing-KD and Continuation-KD as torchdistill plugins, with a benchmark harness',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',  # traceback.format_exception(error)
    packages=find_packages(include=['plugins', 'plugins.*', 'continuation', 'continuation.*']),
    install_requires=[
        'torch>=2.5',
        'torchvision>=0.20',
        'torchdistill==1.1.5',
        'pyyaml>=6.0',
        'scikit-learn>=1.3',
        'scipy>=1.10',
        'matplotlib>=3.7',
        'tqdm>=4.60',
    ],
    extras_require={
        'glue': ['transformers>=4.40', 'datasets>=2.18'],
        'test': ['pytest>=7', 'transformers>=4.40', 'datasets>=2.18'],
    },
    entry_points={'console_scripts': ['kd-train=plugins.runner:main']},
)
