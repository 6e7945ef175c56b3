"""From a recipe to a checked Kaggle kernel: recipes, checks, the notebook, parameters, smoke runs, kjob init."""
