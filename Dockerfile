# The studio server image used by the README's docker-compose example (several servers on PostgreSQL).
FROM python:3.11-slim
WORKDIR /app
COPY . .
# Editable, so the shipped data/ (templates, presets) stays beside the code.
RUN pip install --no-cache-dir -e .
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["streamlit", "run", "studio_app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
