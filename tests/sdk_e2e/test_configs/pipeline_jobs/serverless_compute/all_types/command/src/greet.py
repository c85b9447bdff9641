"""Prints a greeting (the serverless pipelines' component)."""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--whom", default="World")
print(f"Hello {parser.parse_args().whom}!")
