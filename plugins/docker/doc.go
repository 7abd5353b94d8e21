// Package docker is tda's Docker source: it streams the logs of selected containers through
// the Docker Engine API and keeps a per-container checkpoint (the timestamp of the last line
// delivered) so that no line is lost or repeated across restarts of the containers, of the
// daemon and of tda itself.
package docker
