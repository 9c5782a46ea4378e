using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using RollingReboot.Lab.Sim;

namespace RollingReboot.Lab.Xapi;

/// <summary>XAPI's HTTP surface for one simulated host: JSON-RPC on /jsonrpc, XML-RPC on / and /RPC2.</summary>
internal sealed class XapiHttpHandler(SimPool pool, string address)
{
    private const string MalformedPage = "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1>An error occurred processing the request.</body></html>";

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (!HttpMethods.IsPost(request.Method))
        {
            context.Response.ContentType = "text/html";
            await context.Response.WriteAsync("<html><body>XenServer (rollreboot lab)</body></html>", context.RequestAborted);
            return;
        }

        string body;
        using (var reader = new StreamReader(request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        if (request.Path.StartsWithSegments("/jsonrpc"))
        {
            if (!pool.Scenario.Pool.JsonRpc)
            {
                // A host from before JSON-RPC: it only ever speaks XML-RPC.
                await WriteAsync(context, 200, "text/xml", XmlRpcServer.Failure("MESSAGE_METHOD_UNKNOWN", ["jsonrpc"]));
                return;
            }

            await HandleJsonAsync(context, body);
            return;
        }

        if (request.Path == "/" || request.Path.StartsWithSegments("/RPC2"))
        {
            await HandleXmlAsync(context, body);
            return;
        }

        await WriteAsync(context, 404, "text/html", "<html><body>Not found</body></html>");
    }

    private async Task HandleJsonAsync(HttpContext context, string body)
    {
        JsonObject call;
        string method;
        List<JsonNode?> parameters;
        JsonNode? id;
        try
        {
            call = JsonNode.Parse(body) as JsonObject ?? throw new FormatException("not an object");
            method = call["method"]?.GetValue<string>() ?? throw new FormatException("no method");
            parameters = call["params"] is JsonArray ps ? ps.Select(p => p?.DeepClone()).ToList() : call["params"] is null ? [] : throw new FormatException("params");
            id = call["id"];
            if (id is null || id is not JsonValue idValue || !(idValue.TryGetValue<long>(out _) || idValue.TryGetValue<string>(out _)))
            {
                throw new FormatException("id must be a string or an integer");
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            await WriteAsync(context, 500, "text/html", MalformedPage);
            return;
        }

        var v2 = call["jsonrpc"]?.ToString() == "2.0";
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
            // Raised before dispatch: XAPI answers with a bare array and id 0.
            response = v2
                ? new JsonObject { ["jsonrpc"] = "2.0", ["error"] = ErrorArray(e.Code, e.Parameters), ["id"] = 0 }
                : new JsonObject { ["result"] = null, ["error"] = ErrorArray(e.Code, e.Parameters), ["id"] = 0 };
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await WriteAsync(context, 200, "application/json", response.ToJsonString());
    }

    private async Task HandleXmlAsync(HttpContext context, string body)
    {
        string method;
        List<JsonNode?> parameters;
        try
        {
            (method, parameters) = XmlRpcServer.DecodeCall(body);
        }
        catch (MalformedXmlRpcException)
        {
            await WriteAsync(context, 500, "text/html", MalformedPage);
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

    private static async Task WriteAsync(HttpContext context, int status, string contentType, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        await context.Response.WriteAsync(text, context.RequestAborted);
    }
}
