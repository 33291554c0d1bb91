// One purchase of the last item in stock: "naive" reads the quantity and writes it
// back less one; "guarded" decrements only while some is left, in one statement.
const { Client } = require("pg");

async function main(store, buyer) {
  const client = new Client(); // PGHOST, PGPORT, PGUSER, PGDATABASE from the environment
  await client.connect();
  try {
    let sold = false;
    if (store === "naive") {
      const { rows } = await client.query("SELECT qty FROM stock WHERE id = 1");
      if (rows[0].qty > 0) {
        await client.query("UPDATE stock SET qty = $1 WHERE id = 1", [rows[0].qty - 1]);
        sold = true;
      }
    } else {
      const res = await client.query("UPDATE stock SET qty = qty - 1 WHERE id = 1 AND qty > 0");
      sold = res.rowCount === 1;
    }
    if (sold) {
      await client.query("INSERT INTO sales (buyer) VALUES ($1)", [buyer]);
    }
    console.log(sold ? `${buyer}: sold` : `${buyer}: sold out`);
  } finally {
    await client.end();
  }
}

main(process.argv[2], process.argv[3]).catch((err) => {
  console.error(err.message);
  process.exit(1);
});
