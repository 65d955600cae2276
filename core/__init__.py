"""CIFAR Lab core: every piece of logic behind the dashboard, importable without Streamlit."""
