using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using RollingReboot.Lab.Sim;

namespace RollingReboot.Lab.Xapi;

/// <summary>
/// XAPI's HTTP surface for one simulated host, routed as xapi's own web server routes it.
/// </summary>
/// <remarks>
/// ocaml/libs/http-lib/http_svr.ml <c>handle_one</c>: the handlers are kept per HTTP method in a radix tree and a request
/// goes to the registered path that is the <em>longest string prefix</em> of its path (radix_tree.ml
/// <c>longest_prefix</c>); a method with no handler at all is 501, a path no handler of its method covers gets
/// <c>default_callback</c>, 403. The POST paths are those of ocaml/idl/datamodel.ml <c>http_actions</c> with the handlers
/// of ocaml/xapi/xapi.ml <c>common_http_handlers</c>: <c>/</c> and <c>/RPC2</c> are XML-RPC (<c>Api_server.callback false</c>),
/// <c>/json</c> too (<c>callback true</c>, which answers XML-RPC since JSON-RPC 2.0 only changes <c>/jsonrpc</c>), and
/// <c>/jsonrpc</c> is JSON-RPC (<c>jsoncallback</c>). So <c>/xmlrpc</c>, <c>/RPC2/x</c> or <c>/anything</c> is XML-RPC, and
/// <c>/jsonrpc/x</c> is JSON-RPC. Neither callback looks at the Content-Type. Hosts before xapi 1.9.0 (commit
/// cc8f80e4, 2012) have no <c>/jsonrpc</c>: their longest prefix for it is <c>/json</c>, whose XML parser refuses a JSON
/// body with an XML-RPC fault (HTTP 200, text/xml), which is how a client tells such a host.
/// </remarks>
internal sealed class XapiHttpHandler(SimPool pool, string address)
{
    private enum Endpoint
    {
        XmlRpc,
        JsonRpc,
        NotSimulated,
    }

    // http_svr.ml response_internal_error, response_forbidden, response_method_not_implemented; fileserver.ml missing.
    private const string InternalErrorPage = "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.";
    private const string ForbiddenPage = "<html><body><h1>HTTP 403 forbidden</h1>Access to the requested resource is forbidden.</body></html>";

    // The POST handlers of datamodel.ml http_actions (xapi.ml common_http_handlers). The lab serves the API ones.
    private static readonly (string Prefix, Endpoint Kind)[] s_postPaths =
    [
        ("/", Endpoint.XmlRpc), ("/RPC2", Endpoint.XmlRpc), ("/json", Endpoint.XmlRpc), ("/jsonrpc", Endpoint.JsonRpc),
        ("/cli", Endpoint.NotSimulated), ("/services", Endpoint.NotSimulated), ("/remote_db_access", Endpoint.NotSimulated),
    ];

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.HasValue ? request.Path.Value! : "/";
        if (HttpMethods.IsGet(request.Method))
        {
            if (path == "/updates")
            {
                await GetUpdatesAsync(context);
                return;
            }

            await GetAsync(context, path);
            return;
        }

        if (HttpMethods.IsOptions(request.Method))
        {
            // "/" is registered for OPTIONS, so every path has it as a prefix: http_svr.ml respond_to_options.
            var asked = request.Headers.AccessControlRequestHeaders.ToString();
            context.Response.Headers.AccessControlAllowOrigin = "*";
            context.Response.Headers.AccessControlAllowHeaders = asked.Length > 0 ? asked + ", X-Requested-With" : "X-Requested-With";
            context.Response.Headers.AccessControlAllowMethods = "PUT";
            context.Response.ContentLength = 0;
            return;
        }

        if (HttpMethods.IsPut(request.Method) || HttpMethods.IsConnect(request.Method))
        {
            // PUT and CONNECT have handlers (import, blobs, console), none at "/": default_callback.
            await WriteAsync(context, 403, "text/html", ForbiddenPage);
            return;
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            // http.ml method_t_of_string: anything else is "Unknown <m>", for which no handler map exists.
            await WriteAsync(context, 501, "text/html",
                $"<html><body><h1>HTTP 501 Method Not Implemented</h1><p>Unknown {WebUtility.HtmlEncode(request.Method)} not supported.<br /></p></body></html>");
            return;
        }

        string body;
        using (var reader = new StreamReader(request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        switch (Route(path, pool.Scenario.Pool.JsonRpc))
        {
            case Endpoint.JsonRpc:
                await HandleJsonAsync(context, body);
                break;
            case Endpoint.XmlRpc:
                await HandleXmlAsync(context, body);
                break;
            default:
                await WriteAsync(context, 404, "text/html", "<html><body>" + WebUtility.HtmlEncode(path) + " is a xapi handler the rollreboot lab does not simulate</body></html>");
                break;
        }
    }

    /// <summary>The POST handler xapi picks for <paramref name="path"/>: the longest registered prefix.</summary>
    private static Endpoint Route(string path, bool hasJsonRpc)
    {
        var best = (Prefix: "", Kind: Endpoint.NotSimulated);
        foreach (var (prefix, kind) in s_postPaths)
        {
            if ((hasJsonRpc || kind != Endpoint.JsonRpc) && path.StartsWith(prefix, StringComparison.Ordinal) && prefix.Length > best.Prefix.Length)
            {
                best = (prefix, kind);
            }
        }

        return best.Kind;
    }

    /// <summary>
    /// GET /updates (ocaml/xapi/xapi_pool.ml get_updates_handler, under xapi_http.ml with_context): authenticated by a
    /// session_id query parameter or Basic auth (401 "Unauthorised" with a Basic realm otherwise), host_refs optional;
    /// 200 application/json, 400 for bad host_refs, 404 without an update repository, 500 on a failure.
    /// </summary>
    private async Task GetUpdatesAsync(HttpContext context)
    {
        var query = context.Request.Query;
        string? session = query.TryGetValue("session_id", out var sid) ? sid.ToString() : null;
        string? hostRefs = query.TryGetValue("host_refs", out var refs) ? refs.ToString() : null;
        (string, string)? basic = null;
        var auth = context.Request.Headers.Authorization.ToString();
        if (session is null && auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var text = Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..].Trim()));
                var colon = text.IndexOf(':', StringComparison.Ordinal);
                basic = colon < 0 ? (text, "") : (text[..colon], text[(colon + 1)..]);
            }
            catch (FormatException)
            {
                basic = null;
            }
        }

        var (status, body) = pool.HttpGetUpdates(session, basic, hostRefs);
        if (status != 200)
        {
            context.Response.Headers.CacheControl = "no-cache, no-store";
        }
        switch (status)
        {
            case 200:
                await WriteAsync(context, 200, "application/json", body!);
                break;
            case 401:
                // http_svr.ml response_unauthorised.
                context.Response.Headers.WWWAuthenticate = "Basic realm=\"Getting available updates\"";
                await WriteAsync(context, 401, "text/html", "<html><body><h1>HTTP 401 unauthorised</h1>Please check your credentials and retry.</body></html>");
                break;
            case 400 or 404:
                // Http.http_400_badrequest / http_404_missing: the status line and these headers, no body.
                context.Response.StatusCode = status;
                context.Response.ContentLength = 0;
                break;
            default:
                await WriteAsync(context, 500, "text/html", InternalErrorPage);
                break;
        }
    }

    private static async Task GetAsync(HttpContext context, string path)
    {
        // xapi.ml: get_root is Fileserver.send_file "/" web_dir (/opt/xensource/www): its index.html for "/", a file
        // below it, or fileserver.ml "missing" (404, no content type). The lab's web dir holds only the index.
        if (path is "/" or "/index.html")
        {
            await WriteAsync(context, 200, "text/html", "<html><head><title>XenServer</title></head><body>XenServer (rollreboot lab)</body></html>");
            return;
        }

        context.Response.StatusCode = 404;
        await context.Response.WriteAsync(
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"> <html><head> <title>404 Not Found</title> </head><body> <h1>Not Found</h1> <p>The requested URL "
            + WebUtility.HtmlEncode(path) + " was not found on this server.</p> <hr><address>Xapi Server</address></body></html>", context.RequestAborted);
    }

    private async Task HandleJsonAsync(HttpContext context, string body)
    {
        string method;
        List<JsonNode?> parameters;
        JsonNode id;
        bool v2;
        try
        {
            (method, parameters, id, v2) = ParseJsonCall(body);
        }
        catch (FormatException e)
        {
            await WriteInternalErrorAsync(context, "Jsonrpc.Malformed_method_request(\"" + e.Message + "\")");
            return;
        }

        JsonObject response;
        try
        {
            var result = await pool.CallAsync(address, method, parameters, context.RequestAborted);
            if (ShouldReset())
            {
                context.Abort();
                return;
            }

            response = v2
                ? new JsonObject { ["jsonrpc"] = "2.0", ["result"] = result, ["id"] = id.DeepClone() }
                : new JsonObject { ["result"] = result, ["error"] = null, ["id"] = id.DeepClone() };
        }
        catch (XapiError e)
        {
            var data = new JsonArray(e.Parameters.Select(p => (JsonNode?)p).ToArray());
            response = v2
                ? new JsonObject { ["jsonrpc"] = "2.0", ["error"] = new JsonObject { ["code"] = 1, ["message"] = e.Code, ["data"] = data }, ["id"] = id.DeepClone() }
                : new JsonObject { ["result"] = null, ["error"] = ErrorArray(e.Code, e.Parameters), ["id"] = id.DeepClone() };
        }
        catch (PreDispatchError e)
        {
            // api_server.ml jsoncallback: a Server_error raised before dispatch (emergency mode) is written with the
            // default id (Int 0) and, since 24.18.0 (commit 7d4c00c3, "use JsonRPC V2 for error replies"), with
            // ~version:V2: the 2.0 envelope with a bare array whatever the request's version; before, the 1.0 envelope.
            response = pool.XapiVersion >= new Version(24, 18, 0)
                ? new JsonObject { ["jsonrpc"] = "2.0", ["error"] = ErrorArray(e.Code, e.Parameters), ["id"] = 0 }
                : new JsonObject { ["result"] = null, ["error"] = ErrorArray(e.Code, e.Parameters), ["id"] = 0 };
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await WriteAsync(context, 200, "application/json", Utf8(response));
    }

    /// <summary>
    /// A JSON-RPC request as mirage/ocaml-rpc src/lib/jsonrpc.ml <c>version_id_and_call_of_string</c> reads it: an object
    /// with a string <c>method</c>; no <c>jsonrpc</c> is 1.0 and needs a <c>params</c> array, <c>"2.0"</c> takes params
    /// absent, null, an array or one object; anything else in <c>jsonrpc</c> is refused; <c>id</c> must be an integer or a
    /// string (a missing or null id is a notification, which xapi refuses).
    /// </summary>
    private static (string Method, List<JsonNode?> Parameters, JsonNode Id, bool V2) ParseJsonCall(string body)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            throw new FormatException("Unable to parse " + e.Message);
        }

        if (root is not JsonObject call)
        {
            throw new FormatException("Invalid request body");
        }

        if (!call.TryGetPropertyValue("method", out var m) || m is not JsonValue mv || !mv.TryGetValue<string>(out var method))
        {
            throw new FormatException(call.ContainsKey("method") ? "Invalid field 'method' in request body" : "Required field method is missing");
        }

        bool v2;
        if (!call.TryGetPropertyValue("jsonrpc", out var version))
        {
            v2 = false;
        }
        else if (version is JsonValue vv && vv.TryGetValue<string>(out var vs) && vs == "2.0")
        {
            v2 = true;
        }
        else
        {
            throw new FormatException("Invalid field 'jsonrpc' in request body");
        }

        call.TryGetPropertyValue("params", out var ps);
        List<JsonNode?> parameters = ps switch
        {
            JsonArray array => array.Select(p => p?.DeepClone()).ToList(),
            JsonObject one when v2 => [one.DeepClone()],
            null when v2 => [],
            null when !call.ContainsKey("params") => throw new FormatException("Required field params is missing"),
            _ => throw new FormatException("Invalid field 'params' in request body"),
        };

        if (!call.TryGetPropertyValue("id", out var id) || id is not JsonValue idValue || !(idValue.GetValueKind() == JsonValueKind.String || IsInteger(idValue)))
        {
            throw new FormatException("Invalid field 'id' in request body");
        }

        return (method, parameters, id, v2);
    }

    private static bool IsInteger(JsonValue value) =>
        value.GetValueKind() == JsonValueKind.Number && long.TryParse(value.ToJsonString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _);

    private async Task HandleXmlAsync(HttpContext context, string body)
    {
        string method;
        List<JsonNode?> parameters;
        try
        {
            (method, parameters) = XmlRpcServer.DecodeCall(body);
        }
        catch (MalformedXmlRpcException e)
        {
            if (!pool.Scenario.Pool.JsonRpc)
            {
                // Before 1.9.0, api_server.ml callback answered what Xml.parse_string refused with a fault, HTTP 200.
                await WriteAsync(context, 200, "text/xml", XmlRpcServer.Fault(1, "Failed to parse supplied XML"));
                return;
            }

            await WriteInternalErrorAsync(context, e.Message);
            return;
        }

        string xml;
        try
        {
            var result = await pool.CallAsync(address, method, parameters, context.RequestAborted);
            if (ShouldReset())
            {
                context.Abort();
                return;
            }

            // api_server.ml: system.listMethods is the one answer without the Status struct.
            xml = method == "system.listMethods" ? XmlRpcServer.Bare(result) : XmlRpcServer.Success(result);
        }
        catch (XapiError e)
        {
            xml = XmlRpcServer.Failure(e.Code, e.Parameters);
        }
        catch (PreDispatchError e)
        {
            xml = XmlRpcServer.Failure(e.Code, e.Parameters);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await WriteAsync(context, 200, "text/xml", xml);
    }

    private bool ShouldReset()
    {
        lock (pool.Gate)
        {
            return pool.RandomFault("connectionReset");
        }
    }

    private static JsonArray ErrorArray(string code, IReadOnlyList<string> parameters) =>
        new([(JsonNode?)code, .. parameters.Select(p => (JsonNode?)p)]);

    /// <summary>What a request the callbacks cannot parse gets: the exception reaches http_svr.ml handle_one, HTTP 500.</summary>
    private static Task WriteInternalErrorAsync(HttpContext context, string exception) =>
        WriteAsync(context, 500, "text/html", InternalErrorPage + "<h1> Additional information </h1>" + WebUtility.HtmlEncode(exception) + "</body></html>");

    private static Task WriteAsync(HttpContext context, int status, string contentType, string text) =>
        WriteAsync(context, status, contentType, Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// A whole body with its Content-Length, never chunked: xapi writes every reply with Http_svr.response_fct, which sets
    /// content_length before the body (ocaml/libs/http-lib/http_svr.ml; api_server.ml jsoncallback and callback).
    /// </summary>
    private static async Task WriteAsync(HttpContext context, int status, string contentType, ReadOnlyMemory<byte> body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>A JSON-RPC reply as UTF-8 straight from the tree (a pool's get_all_records is megabytes: no UTF-16 copy).</summary>
    private static ReadOnlyMemory<byte> Utf8(JsonNode response)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            response.WriteTo(writer);
        }

        return buffer.WrittenMemory;
    }
}
