# Image of the migration job: the migrate tool (tools/cmd/migrate) on a
# minimal base, with what it reads at run time under MIGRATE_ROOT: the
# catalogue, every manifest (their tables: are the grants) and every
# component's goose migrations (shared/**/migrations, functions/*/migrations),
# at their repository paths. The tool finds components by that layout, so
# the image needs no list of functions. The job runs "migrate up".
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN cd tools && CGO_ENABLED=0 GOWORK=off go build -trimpath -o /out/migrate ./cmd/migrate
RUN mkdir -p /out/repo && cp topics.yaml /out/repo/ \
 && find shared functions -path '*/testdata' -prune -o -type f \( -path '*/migrations/*.sql' -o -path 'functions/*/function.yaml' \) -print \
    | xargs cp --parents -t /out/repo \
 && test -f /out/repo/shared/idempotency/migrations/0001_processed_events.sql

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/migrate /usr/local/bin/migrate
COPY --from=build /out/repo /repo
ENV MIGRATE_ROOT=/repo
ENTRYPOINT []
CMD ["migrate", "up"]
