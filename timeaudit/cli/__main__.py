from timeaudit.cli.app import app

app()
