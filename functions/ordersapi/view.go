package ordersapi

import (
	"time"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
)

// OrderView is the JSON representation of an order.
type OrderView struct {
	ID         string            `json:"id"`
	CustomerID string            `json:"customer_id"`
	Currency   string            `json:"currency"`
	Items      []domain.LineItem `json:"items"`
	// Total is the sum of quantity x unit_price, in minor units.
	Total         int64        `json:"total"`
	Status        string       `json:"status"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	StatusHistory []ChangeView `json:"status_history"`
}

// ChangeView is one entry of an order's status history.
type ChangeView struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// view is the order as it is now (GET).
func view(o orders.Order) OrderView {
	v := OrderView{
		ID: o.ID, CustomerID: o.CustomerID, Currency: o.Currency, Items: o.Items, Total: o.Total,
		Status: string(o.Status), CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
		StatusHistory: make([]ChangeView, len(o.History)),
	}
	for i, c := range o.History {
		v.StatusHistory[i] = ChangeView{Status: string(c.Status), At: c.At.UTC()}
	}
	return v
}

// creationView is the order as it was created (the response of POST, and
// of every replay of it): built only from values that never change, so
// every replay is byte-identical to the first response, whatever the
// order's status is now.
func creationView(o orders.Order) OrderView {
	created := o.CreatedAt.UTC()
	return OrderView{
		ID: o.ID, CustomerID: o.CustomerID, Currency: o.Currency, Items: o.Items, Total: o.Total,
		Status: string(orders.Pending), CreatedAt: created, UpdatedAt: created,
		StatusHistory: []ChangeView{{Status: string(orders.Pending), At: created}},
	}
}
