variable "repo_root" {
  description = "Path of the repository root: the folder holding topics.yaml and functions/<name>/function.yaml."
  type        = string
  nullable    = false

  validation {
    condition     = fileexists("${var.repo_root}/topics.yaml")
    error_message = "The repo_root must be the repository root: no topics.yaml was found there."
  }
}
