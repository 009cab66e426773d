package admin

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument is the OpenAPI 3.1 document of /v1, kept beside the code it
// describes. The package's tests hold it to the routes Register mounts, and to
// the real answers of the API through an OpenAPI validator.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document of the admin API, as JSON. The
// caller must not modify it.
func OpenAPI() []byte { return openAPIDocument }

// serveOpenAPI answers GET /v1/openapi.json. It sits behind the same bearer
// authentication as the rest of /v1: the API is internal, and so is its map.
func (a *API) serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
