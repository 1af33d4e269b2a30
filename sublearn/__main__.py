from sublearn.cli import app

app(prog_name="sublearn")
