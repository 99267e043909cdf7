"""Tasks: each job transferlab does (predict, classify, gan, stylize, adapt ...) is one module
or package here, built on data/, backbones/, engine/, metrics/ and reports/. Tasks never import
one another's internals."""
