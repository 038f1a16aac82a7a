FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events events
COPY actions actions
COPY triggers triggers
COPY sla sla
COPY tripwire tripwire
COPY clients/python/tripwire_client clients/python/tripwire_client
RUN pip install --no-cache-dir .
EXPOSE 4280
ENTRYPOINT ["tripwire"]
CMD ["up", "--host", "0.0.0.0"]
