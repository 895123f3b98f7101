# The one image of compose.yaml's app containers (web, workers, beat, migrate).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# espeak-ng: the speech engine the workers record news narrations with
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# settings create staticfiles/ at import; the app runs unprivileged
RUN useradd --create-home --uid 10001 app && mkdir -p staticfiles media && chown app staticfiles media
USER app
EXPOSE 8000
CMD ["python", "-m", "daphne", "-b", "0.0.0.0", "-p", "8000", "notifyplatform.asgi:application"]
