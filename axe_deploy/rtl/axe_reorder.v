// axe_reorder: permutes every vector of N elements, out[j] = in[ORDER[j]], one element a
// beat in and out (the stitched top puts data-width converters around it).
//
// Two banks of N elements: the writer fills one in stream order while the reader emits the
// other in ORDER, so vectors flow at one element a cycle after the first one is in.
// ORDER_FILE holds N words of AW bits ($readmemh), word j = the input index of output j.
`default_nettype none

module axe_reorder #(
  parameter integer N = 4,
  parameter integer BITS = 4,
  parameter ORDER_FILE = "order.hex"
) (
  input  wire            clk,
  input  wire            rst_n,
  input  wire [BITS-1:0] in_data,
  input  wire            in_valid,
  output wire            in_ready,
  output wire [BITS-1:0] out_data,
  output wire            out_valid,
  input  wire            out_ready
);
  localparam integer AW = (N > 1) ? $clog2(N) : 1;
  localparam [AW-1:0] LAST = N[AW-1:0] - 1'b1;

  reg [BITS-1:0] mem [0:2*N-1];
  reg [AW-1:0] order [0:N-1];
  initial $readmemh(ORDER_FILE, order);

  reg [1:0]    full;          // bank b holds a whole vector not yet emitted
  reg          wbank, rbank;
  reg [AW-1:0] wi, rj;
  reg          out_valid_r;
  wire en = !out_valid_r || out_ready;
  assign in_ready = !full[wbank];
  wire in_fire = in_valid && in_ready;
  wire issue = en && full[rbank];
  // bank b starts at b*N (N need not be a power of two)
  localparam [AW:0] BANK1 = N[AW:0];
  wire [AW:0] w_addr = (wbank ? BANK1 : {(AW+1){1'b0}}) + {1'b0, wi};
  wire [AW:0] r_addr = (rbank ? BANK1 : {(AW+1){1'b0}}) + {1'b0, order[rj]};

  always @(posedge clk) begin
    if (in_fire) mem[w_addr] <= in_data;
    if (!rst_n) begin
      full <= 2'b00;
      wbank <= 1'b0;
      rbank <= 1'b0;
      wi <= {AW{1'b0}};
      rj <= {AW{1'b0}};
    end else begin
      if (in_fire) begin
        wi <= (wi == LAST) ? {AW{1'b0}} : wi + 1'b1;
        if (wi == LAST) wbank <= ~wbank;
      end
      if (issue) begin
        rj <= (rj == LAST) ? {AW{1'b0}} : rj + 1'b1;
        if (rj == LAST) rbank <= ~rbank;
      end
      // the writer only fills a free bank, the reader only empties a full one
      full <= (full | ((in_fire && wi == LAST) ? (2'b01 << wbank) : 2'b00))
                    & ~((issue && rj == LAST) ? (2'b01 << rbank) : 2'b00);
    end
  end

  reg [BITS-1:0] out_r;
  always @(posedge clk) begin
    if (!rst_n) out_valid_r <= 1'b0;
    else if (en) out_valid_r <= issue;
    if (issue) out_r <= mem[r_addr];
  end
  assign out_data = out_r;
  assign out_valid = out_valid_r;
endmodule

`default_nettype wire
