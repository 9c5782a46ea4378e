namespace RollingReboot.CloudStack;

/// <summary>How <see cref="CloudStackClient"/> reaches and talks to the management server. Immutable.</summary>
public sealed class CloudStackClientOptions
{
    /// <summary>The API endpoint, e.g. <c>http://mgmt:8080/client/api</c> (a bare server URL gets <c>/client/api</c>).</summary>
    public required Uri Endpoint { get; init; }

    public required string ApiKey { get; init; }

    public required string SecretKey { get; init; }

    /// <summary>Bound on each read attempt (list*, queryAsyncJobResult).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Bound on updateCluster, which blocks on the server while it disconnects hosts (it polls them for up to
    /// ~200 s), so it needs far more than <see cref="Timeout"/>.
    /// </summary>
    public TimeSpan UpdateClusterTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// False accepts any TLS certificate (CloudMonkey's <c>verifycert = false</c>). Ignored when a handler is
    /// given to the client.
    /// </summary>
    public bool VerifyCertificate { get; init; } = true;

    /// <summary>
    /// Send every command as a form POST. Without it, state-changing commands (anything but get*, list*, query*, find*:
    /// ApiServlet.GET_REQUEST_COMMANDS) are POSTed anyway, and reads are GETs.
    /// </summary>
    public bool UsePost { get; init; }

    /// <summary>
    /// Sign with <c>signatureversion=3</c> and an <c>expires</c> timestamp (the default: every supported version accepts
    /// it, and servers with <c>enforce.post.requests.and.timestamps</c> refuse anything else). False signs version 1.
    /// </summary>
    public bool UseSignatureVersion3 { get; init; } = true;

    /// <summary>
    /// How far ahead <c>expires</c> is set, from the wall clock. Servers that enforce timestamps refuse more than 15 minutes
    /// (ApiServer.verifyRequest: <c>thresholdTime = now + 15 * 60 * 1000</c>).
    /// </summary>
    public TimeSpan Expiry { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Retries of a read after a connection failure, a timeout or a 5xx answer.</summary>
    public int RetryCount { get; init; } = 3;

    /// <summary>First delay between retries (then exponential).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often state is re-read while waiting (cluster state, hosts, async jobs).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Bound on waiting for an async job.</summary>
    public TimeSpan AsyncJobTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Page size of list calls; null (the default) pages at the server's own default.page.size. A size above what the
    /// server allows is lowered to the limit its 431 names.
    /// </summary>
    public int? PageSize { get; init; }

    public static CloudStackClientOptions FromCredentials(CloudStackCredentials credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return new CloudStackClientOptions
        {
            Endpoint = credentials.Endpoint,
            ApiKey = credentials.ApiKey,
            SecretKey = credentials.SecretKey,
            Timeout = credentials.Timeout ?? TimeSpan.FromSeconds(60),
            VerifyCertificate = credentials.VerifyCertificate,
            PageSize = credentials.PageSize,
        };
    }

    internal void Validate()
    {
        if (Endpoint is null || !Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException("The CloudStack endpoint must be an absolute http(s) URL.", nameof(Endpoint));
        }

        if (string.IsNullOrWhiteSpace(ApiKey))
        {
            throw new ArgumentException("The CloudStack API key is empty.", nameof(ApiKey));
        }

        if (string.IsNullOrWhiteSpace(SecretKey))
        {
            throw new ArgumentException("The CloudStack secret key is empty.", nameof(SecretKey));
        }

        RequirePositive(Timeout, nameof(Timeout));
        RequirePositive(UpdateClusterTimeout, nameof(UpdateClusterTimeout));
        RequirePositive(Expiry, nameof(Expiry));
        RequirePositive(AsyncJobTimeout, nameof(AsyncJobTimeout));
        ArgumentOutOfRangeException.ThrowIfNegative(RetryCount, nameof(RetryCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(RetryDelay, TimeSpan.Zero, nameof(RetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(PollInterval, TimeSpan.Zero, nameof(PollInterval));
        if (PageSize is { } pageSize)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize, nameof(PageSize));
        }

        if (Expiry > TimeSpan.FromMinutes(15))
        {
            throw new ArgumentOutOfRangeException(nameof(Expiry), Expiry, "Expiry must be at most 15 minutes: servers that enforce timestamps refuse more.");
        }
    }

    public override string ToString() =>
        $"CloudStack {CloudStackCredentials.DisplayUrl(Endpoint)} (apikey {CloudStackCredentials.Abbreviate(ApiKey)}, secret key hidden, " +
        $"timeout {Timeout}, {(UsePost ? "POST" : "POST for changes")}{(UseSignatureVersion3 ? ", signature v3" : ", signature v1")}{(VerifyCertificate ? "" : ", any TLS certificate")}, {RetryCount} retries)";

    private static void RequirePositive(TimeSpan value, string name)
    {
        // Polly's timeout strategy accepts 10 ms to one day.
        if (value < TimeSpan.FromMilliseconds(10) || value > TimeSpan.FromDays(1))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be between 10 ms and one day.");
        }
    }
}
