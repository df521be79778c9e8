// Package atomicfile replaces files so that a crash at any moment leaves
// either the old contents or the new ones: data go to a temporary file in
// the same folder, which is synced, renamed over the target, and the folder
// is synced so that the rename is durable.
package atomicfile
