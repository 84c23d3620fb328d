# Image of the migration job: the migrate tool (tools/cmd/migrate, provided
# by the Go side) on a minimal base. The job runs "migrate up".
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN cd tools && CGO_ENABLED=0 GOWORK=off go build -trimpath -o /out/migrate ./cmd/migrate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/migrate /usr/local/bin/migrate
ENTRYPOINT []
CMD ["migrate", "up"]
