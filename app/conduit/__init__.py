"""The RealWorld ("Conduit") API under /api: the contract of ../shared/realworld, over the same
services as /api/v1. Conduit's "article" is Quill's post, its "profile" a user's public profile."""
