FROM python:3.11-slim
WORKDIR /app
# tripwire-client first: the engine depends on it, and it is not published to an index.
COPY clients/python clients/python
RUN pip install --no-cache-dir ./clients/python
COPY pyproject.toml README.md ./
COPY events events
COPY actions actions
COPY triggers triggers
COPY sla sla
COPY tripwire tripwire
RUN pip install --no-cache-dir .
EXPOSE 4280
ENTRYPOINT ["tripwire"]
CMD ["up", "--host", "0.0.0.0"]
